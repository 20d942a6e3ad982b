// SPDX-License-Identifier: Apache-2.0
/*
 * Build-time tool: compile the seccomp policy into C arrays of BPF for
 * ember to embed.  usage: seccompiler POLICY OUT.c
 */
#include <stdio.h>
#include <stdlib.h>

#include "policy.h"

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s POLICY OUT.c\n", argv[0]);
		return 2;
	}
	FILE *in = fopen(argv[1], "r");
	if (!in) {
		perror(argv[1]);
		return 1;
	}
	static char text[1 << 20];
	size_t n = fread(text, 1, sizeof(text) - 1, in);
	fclose(in);
	text[n] = 0;
	FILE *out = fopen(argv[2], "w");
	if (!out) {
		perror(argv[2]);
		return 1;
	}
	fprintf(out,
		"/* Generated from %s by seccompiler: do not edit. */\n"
		"#include \"seccomp/seccomp.h\"\n\n",
		argv[1]);
	int lens[SECCOMP_CLASSES];
	for (int c = 0; c < SECCOMP_CLASSES; c++) {
		struct sock_filter *prog;
		char err[200];
		int len = seccomp_policy_compile(text, c, &prog, err, sizeof(err));
		if (len < 0) {
			fprintf(stderr, "%s: [%s]: %s\n", argv[1], seccomp_class_names[c], err);
			fclose(out);
			remove(argv[2]);
			return 1;
		}
		lens[c] = len;
		fprintf(out, "static const struct sock_filter f_%s[] = {\n",
			seccomp_class_names[c]);
		for (int i = 0; i < len; i++)
			fprintf(out, "\t{ 0x%04x, %u, %u, 0x%08x },\n", prog[i].code, prog[i].jt,
				prog[i].jf, prog[i].k);
		fprintf(out, "};\n\n");
		free(prog);
	}
	fprintf(out, "const struct seccomp_builtin ember_seccomp_builtin[SECCOMP_CLASSES] = {\n");
	for (int c = 0; c < SECCOMP_CLASSES; c++)
		fprintf(out, "\t[%d] = { f_%s, %d },\n", c, seccomp_class_names[c], lens[c]);
	fprintf(out, "};\n");
	return fclose(out) == 0 ? 0 : 1;
}
