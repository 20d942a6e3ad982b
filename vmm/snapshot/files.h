/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A snapshot's two files on disk: the memory file (which pages a Full or a
 * Diff holds, and how a Diff lands on an existing memory file) and the
 * state file, both written atomically. VMM thread, VM paused.
 */
#ifndef EMBER_SNAPSHOT_FILES_H
#define EMBER_SNAPSHOT_FILES_H

#include <stdbool.h>
#include <stddef.h>

struct vm;

/*
 * Write the memory file and the state file @state (@len bytes). @whole:
 * every page that is not all zeros (a Full snapshot, or a Diff with no
 * base); else a Diff's pages: with track_dirty_pages those KVM's dirty log
 * and ember's devices report (reading the log clears it: *@consumed), else
 * those mincore(2) finds resident. A Diff onto a memory file of the VM's
 * size already at @mem_path is merged into it. Each file is written under
 * a temporary name beside its path and fsynced; only then does the older
 * state file go, the memory file take its name and the state file take its
 * own, last. A failure (a full disk) leaves the paths as they were and no
 * temporary file; a crash or kill -9 at any point leaves the older
 * snapshot whole, or no state file, or the new snapshot whole. 0, or a
 * negative errno with @err set.
 */
int snap_write_files(struct vm *vm, const char *state_path, const char *mem_path, bool whole,
		     const void *state, size_t len, bool *consumed, char *err, size_t err_len)
    __attribute__((warn_unused_result));

/* Format @fmt into @err (@len bytes) and return @r: the error return of
 * every snapshot step, "return snap_fail(err, len, -EINVAL, ...)". */
int snap_fail(char *err, size_t len, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Clear the dirty logs (KVM's and the devices'): the next Diff starts here. */
void snap_reset_dirty_log(struct vm *vm);

#endif
