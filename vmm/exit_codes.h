/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ember's process exit statuses. The README documents the same table; keep
 * the two in step. A guest that writes to the debug-exit port chooses its own
 * status (0-255), which may collide with these: that port is for test guests.
 */
#ifndef EMBER_EXIT_CODES_H
#define EMBER_EXIT_CODES_H

enum ember_exit {
	EMBER_EXIT_OK = 0, /* guest stopped cleanly (reset, shutdown) */
	EMBER_EXIT_ERROR = 1, /* internal error in the monitor */
	EMBER_EXIT_USAGE = 64, /* bad command-line argument */
	EMBER_EXIT_BAD_KERNEL = 65, /* kernel or initrd unusable */
	EMBER_EXIT_KVM = 66, /* /dev/kvm missing or a KVM set-up call failed */
	EMBER_EXIT_BAD_DRIVE = 67, /* a drive's backing file or a NIC's TAP is unusable */
	EMBER_EXIT_TRIPLE_FAULT = 70, /* guest triple-faulted (KVM_EXIT_SHUTDOWN) */
	EMBER_EXIT_EMULATION = 71, /* KVM could not emulate a guest instruction */
	EMBER_EXIT_ENTRY_FAILED = 72, /* KVM refused to enter the guest */
	EMBER_EXIT_GUEST_CRASH = 73, /* guest reported a crash (system event) */
	EMBER_EXIT_SIGNAL = 74, /* stopped by SIGTERM/SIGINT */
	EMBER_EXIT_SNAPSHOT = 75, /* a snapshot could not be loaded (bad or mismatched files) */
	EMBER_EXIT_BAD_SYSCALL = 148, /* a thread made a system call its seccomp filter denies */
};

#endif
