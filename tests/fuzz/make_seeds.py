#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Seed inputs for the virtio fuzz targets, written in the input format
their harnesses read (tests/fuzz/fuzz_virtio.h and each fuzz_<target>.c):
well-formed traffic first, then one seed per kind of malformation, so a run
starts from inputs that reach deep into each device.

    tests/fuzz/make_seeds.py [TARGET...]   (default: all; writes
    tests/fuzz/corpus/<target>/seed-<name>)

Re-run it after changing a harness's input format."""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# fuzz_virtio.h
WRITE, NEXT, INDIRECT = 2, 1, 4


def u8(v):
    return struct.pack("<B", v & 0xFF)


def u16(v):
    return struct.pack("<H", v & 0xFFFF)


def u32(v):
    return struct.pack("<I", v & 0xFFFFFFFF)


def u64(v):
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


def negotiate(version_1=True, clear=0, raw=None):
    """fz_negotiate: the device's features less @clear (or @raw, all 64 bits)."""
    mode = (1 if version_1 else 0) | (0xF0 if raw is not None else 0)
    return u8(mode) + u64(clear) + (u64(raw) if raw is not None else b"")


def queue(log2=4, ready=True, size=None, hostile=None):
    """fz_vq_setup: 2^log2 entries, or any @size; @hostile: three gpa()s."""
    if size is not None:
        return u8(0xC0 | (0 if ready else 0x20)) + u16(size)
    if hostile is not None:
        return u8(0x80 | log2) + b"".join(hostile)
    return u8(log2 if ready else 0xE0 | log2)


def gpa(kind="alloc", v=0, edge=0):
    """fz_gpa: a fresh buffer, anywhere (u32), by an edge, in the rings, raw."""
    if kind == "alloc":
        return u8(0)
    if kind == "ram":
        return u8(4) + u32(v)
    if kind == "edge":  # edges: 0, end of low RAM, start of high RAM, end of RAM
        return u8(5 | edge << 3) + u8(v)
    if kind == "rings":
        return u8(6 | edge << 3) + u16(v)
    return u8(7) + u64(v)


def length(n):
    """fz_len."""
    if n < 64:
        return u8(n << 2)
    if n % 512 == 0 and n // 512 < 64:
        return u8(1 | (n // 512) << 2)
    if n < 0x10000:
        return u8(2) + u16(n)
    return u8(3) + u32(n)


def fill(data):
    return u8(len(data)) + data


def desc(op, slot, flags, nxt, ln, where=None):
    """fz_op_desc."""
    return u8(op) + u8(slot) + u8(flags) + u8(nxt) + length(ln) + (where or gpa())


def chain(op, segs, publish=True):
    """fz_op_chain: segs of (len, writable, data, where)."""
    out = u8(op) + u8((len(segs) - 1) | (0 if publish else 0x80))
    for ln, wr, data, where in segs:
        out += u8(1 if wr else 0) + length(ln) + (where or gpa())
        if not wr:
            out += fill(data)
    return out


# ---- fuzz_virtio_blk -----------------------------------------------------------
B_DESC, B_CHAIN, B_REQ, B_PUBLISH, B_AVAIL, B_FLAGS, B_RECYCLE, B_POKE, B_KICK = (
    0, 1, 2, 5, 6, 7, 8, 9, 10)
B_RESET = 131  # 11 (mod 12) with bit 7: kick without waiting, then reset
T_IN, T_OUT, T_FLUSH, T_GET_ID = 0, 1, 2, 3  # index into the harness's types[]


def blk_req(kind=T_IN, sector=0, data=(), hdr="one", status=1, raw_type=None,
            raw_sector=None, flip=False, publish=True):
    """op_request: data is a list of (len, bytes) (bytes for device-readable)."""
    shape = {"one": 0, "split": 2, "short": 3}[hdr] | (len(data) << 2)
    if status is None:
        shape |= 0x80
    elif status != 1:
        shape |= 0x20
    if flip:
        shape |= 0x40
    if not publish:
        shape |= 0x10
    k = kind | (4 if raw_type is not None else 0) | (8 if raw_sector is not None else 0)
    out = u8(B_REQ) + u8(shape) + u8(k)
    if raw_type is not None:
        out += u32(raw_type)
    out += u64(raw_sector) if raw_sector is not None else u8(sector)
    if hdr == "short":
        out += u8(9)
    dev_writes = (raw_type is None and kind in (T_IN, T_GET_ID)) != flip
    for ln, content in data:
        out += u8(0x80 | ln) if ln < 128 and ln % 512 else u8(ln // 512)
        if not dev_writes:
            out += fill(content)
    if status is not None and status != 1:
        out += u8(status)
    return out


def blk(drive=1, ops=b"", q=None, feat=None):
    """drive: bit 0 sync (else io_uring), bit 1 read-only, bit 2 writeback."""
    return u8(drive) + (feat or negotiate()) + (q or queue(4)) + ops


def blk_seeds():
    k = u8(B_KICK)
    sec = bytes(range(256)) * 2
    s = {}
    for d in range(8):
        s[f"rw-drive{d}"] = blk(d, blk_req(T_OUT, 10, [(1024, sec[:200])]) + k +
                                blk_req(T_IN, 10, [(512, b""), (512, b"")]) + k +
                                blk_req(T_FLUSH) + k + blk_req(T_GET_ID, 0, [(64, b"")]) + k)
    s["read-batch"] = blk(0, b"".join(blk_req(T_IN, i, [(512, b"")]) for i in range(12)) + k,
                          q=queue(8))
    s["get-id-short-buffer"] = blk(5, blk_req(T_GET_ID, 0, [(7, b"")]) + k)
    s["unknown-type"] = blk(1, blk_req(raw_type=0x42) + k)
    s["past-the-end"] = blk(1, blk_req(T_IN, 63, [(1024, b"")]) + k +
                            blk_req(T_IN, raw_sector=(1 << 64) - 1, data=[(512, b"")]) + k)
    s["odd-length"] = blk(1, blk_req(T_IN, 1, [(100, b"")]) + k +
                          blk_req(T_OUT, 1, [(100, b"x" * 100)]) + k)
    s["header-shapes"] = blk(1, blk_req(T_IN, 2, [(512, b"")], hdr="split") + k +
                             blk_req(T_IN, 2, [(512, b"")], hdr="short") + k)
    s["status-shapes"] = blk(1, blk_req(T_IN, 3, [(512, b"")], status=None) + k +
                             blk_req(T_IN, 3, [(512, b"")], status=0) + k +
                             blk_req(T_IN, 3, [(512, b"")], status=3) + k)
    s["wrong-direction"] = blk(1, blk_req(T_IN, 4, [(512, b"")], flip=True) + k +
                               blk_req(T_OUT, 4, [(512, b"")], flip=True) + k)
    s["flush-with-data"] = blk(5, blk_req(T_FLUSH, 0, [(512, b"f")]) + k)
    s["read-only-write"] = blk(3, blk_req(T_OUT, 1, [(512, b"w")]) + k)
    s["generic-chain"] = blk(1, chain(B_CHAIN, [(16, False, u32(0) + u32(0) + u64(7), None),
                                                (200, True, b"", None), (312, True, b"", None),
                                                (1, True, b"", None)]) + k)
    s["desc-loop"] = blk(1, desc(B_DESC, 0, NEXT, 1, 16) + desc(B_DESC, 1, NEXT | WRITE, 0, 512) +
                         u8(B_PUBLISH) + u16(0) + k + blk_req(T_IN, 1, [(512, b"")]) + k)
    s["indirect"] = blk(1, desc(B_DESC, 0, INDIRECT, 0, 64) + u8(B_PUBLISH) + u16(0) + k)
    s["next-outside"] = blk(1, desc(B_DESC, 0, NEXT, 200, 16) + u8(B_PUBLISH) + u16(0) + k)
    s["readable-after-writable"] = blk(1, desc(B_DESC, 0, NEXT | WRITE, 1, 1) +
                                       desc(B_DESC, 1, 0, 0, 16) + u8(B_PUBLISH) + u16(0) + k)
    s["buffers-outside-ram"] = blk(1, desc(B_DESC, 0, WRITE, 0, 512, gpa("edge", 0xF8, 1)) +
                                   u8(B_PUBLISH) + u16(0) + desc(B_DESC, 1, WRITE, 0, 16,
                                                                 gpa("raw", (1 << 64) - 8)) +
                                   u8(B_PUBLISH) + u16(1) + desc(B_DESC, 2, WRITE, 0, 16,
                                                                 gpa("ram", 0x100008)) +
                                   u8(B_PUBLISH) + u16(2) + k)
    s["avail-runs-ahead"] = blk(1, u8(B_AVAIL) + u16(100) + k)
    s["head-outside"] = blk(1, u8(B_PUBLISH) + u16(300) + k)
    s["event-idx"] = blk(1, u8(B_FLAGS) + u8(0) + u16(1) + blk_req(T_IN, 1, [(512, b"")]) + k +
                         blk_req(T_IN, 2, [(512, b"")]) + k + u8(B_FLAGS) + u8(1) + u16(0) +
                         blk_req(T_IN, 3, [(512, b"")]) + k)
    s["recycle"] = blk(1, blk_req(T_IN, 1, [(512, b"")]) + k + u8(B_RECYCLE) + u8(1) + k)
    s["poke-header"] = blk(1, blk_req(T_IN, 1, [(512, b"")], publish=False) +
                           u8(B_POKE) + u8(4) + gpa("ram", 0x80000) + u32(1) +
                           u8(B_PUBLISH) + u16(0) + k)
    s["reset-mid-stream"] = blk(0, blk_req(T_OUT, 1, [(4096, b"z")]) + u8(B_RESET) +
                                negotiate() + queue(4) + blk_req(T_IN, 1, [(512, b"")]) + k)
    s["bad-queue-size"] = blk(1, blk_req(T_IN, 1, [(512, b"")]) + k, q=queue(size=3))
    s["queue-not-ready"] = blk(1, blk_req(T_IN, 1, [(512, b"")]) + k, q=queue(4, ready=False))
    s["queue-misaligned"] = blk(1, blk_req(T_IN, 1, [(512, b"")]) + k,
                                q=queue(4, hostile=[gpa("ram", 0x10001), gpa("ram", 0x11000),
                                                    gpa("ram", 0x12000)]))
    s["queue-outside-ram"] = blk(1, k, q=queue(4, hostile=[gpa("ram", 0x10000),
                                                           gpa("ram", 0x11000),
                                                           gpa("edge", 0xF0, 1)]))
    s["no-version-1"] = blk(1, blk_req(T_IN, 1, [(512, b"")]) + k, feat=negotiate(False))
    s["unoffered-feature"] = blk(1, k, feat=negotiate(raw=(1 << 32) | (1 << 40)))
    return s


TARGETS = {
    "fuzz_virtio_blk": blk_seeds,
}


def main():
    for t in sys.argv[1:] or TARGETS:
        d = os.path.join(HERE, "corpus", t)
        os.makedirs(d, exist_ok=True)
        for name, data in TARGETS[t]().items():
            with open(os.path.join(d, "seed-" + name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
