#!/usr/bin/python3
"""Lay a Diff snapshot's memory file onto its base, in place.

usage: snapshot-merge.py BASE_MEM DIFF_MEM

A Diff memory file (PUT /snapshot/create with snapshot_type Diff) is as
large as guest memory but holds data only in the pages that changed since
the previous snapshot; everything else is a hole. This copies every data
range of DIFF_MEM to the same offset of BASE_MEM. The result, with the Diff
snapshot's state file, restores the VM as it was at the Diff. Apply diffs in
the order they were taken.
"""
import os
import sys


def merge(base_path, diff_path):
    with open(diff_path, "rb") as diff, open(base_path, "r+b") as base:
        size = os.fstat(diff.fileno()).st_size
        if os.fstat(base.fileno()).st_size != size:
            sys.exit(f"snapshot-merge: {base_path} and {diff_path} differ in size")
        off, copied = 0, 0
        while off < size:
            try:
                start = os.lseek(diff.fileno(), off, os.SEEK_DATA)
            except OSError:  # ENXIO: no data past off
                break
            end = os.lseek(diff.fileno(), start, os.SEEK_HOLE)
            diff.seek(start)
            base.seek(start)
            left = end - start
            while left:
                chunk = diff.read(min(left, 1 << 20))
                base.write(chunk)
                left -= len(chunk)
            copied += end - start
            off = end
        base.flush()
        os.fsync(base.fileno())
    return copied


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    n = merge(sys.argv[1], sys.argv[2])
    print(f"snapshot-merge: copied {n} bytes")
