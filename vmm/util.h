/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers shared across the monitor. */
#ifndef EMBER_UTIL_H
#define EMBER_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* pread(2) until @len bytes are read. 0, -errno, or -EIO at end of file. */
int pread_full(int fd, void *buf, uint64_t len, uint64_t off);
/* write(2) until all of @buf is written. 0 or -errno. */
int write_full(int fd, const void *buf, uint64_t len);

/*
 * Make @s valid UTF-8 without control characters, in place: each byte of an
 * invalid, overlong, surrogate or truncated sequence, and each ASCII control
 * character, becomes '?'. For text that echoes client or guest input (API
 * errors, log lines), which JSON and log readers must be able to take.
 */
void utf8_sanitize(char *s);
/* Whether @s is valid UTF-8 (control characters allowed): what a JSON string can hold. */
bool utf8_valid(const char *s);

/*
 * Every thread ember starts gets this much stack instead of glibc's default
 * (RLIMIT_STACK, 8 MiB): vCPU threads run exit dispatch and log
 * formatting, the HTTP thread parses requests; none recurses. Only touched
 * pages cost memory, but a small, fixed size keeps each clone's address
 * space and page tables small and does not depend on the launcher's
 * ulimit. ASan's redzones and fake stacks need more.
 */
#if defined(__SANITIZE_ADDRESS__)
#define THREAD_STACK_BYTES (4u << 20)
#else
#define THREAD_STACK_BYTES (512u << 10)
#endif
/* pthread_create() with a THREAD_STACK_BYTES stack. 0 or a positive errno,
 * as pthread_create(). */
int thread_start(pthread_t *t, void *(*fn)(void *), void *arg);

struct sockaddr_un;
/*
 * bind(2) @fd to the Unix socket @addr. A socket file left behind by a
 * process that died (nobody accepts connections on it) is removed and the
 * bind retried, so a restarted or restored monitor can reuse its paths. A
 * path some process still listens on, or a file that is not a socket, is
 * never touched: -EADDRINUSE or -EEXIST. 0 or -errno.
 */
int bind_unix_replacing_stale(int fd, const struct sockaddr_un *addr);
/* For an error message: why bind_unix_replacing_stale() returned @err
 * (" (another process listens on it)"), or "" when strerror() says it. */
const char *bind_unix_why(int err);

#endif
