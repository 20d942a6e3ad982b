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
B_SHRINK = 129  # 9 (mod 12) with bit 7: the backing file shrinks (u16: new size)
B_TIME = 69  # 9 (mod 12) with bit 6, not 7: time passes: the rate limiter refills, its timer fires
B_LIMITED = 8  # the rate-limited drive
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
    s["rate-limited"] = blk(B_LIMITED, b"".join(blk_req(T_IN, i, [(512, b"")]) for i in range(5)) +
                            k + blk_req(T_OUT, 9, [(8192, b"")]) + k + u8(B_TIME) +
                            blk_req(T_IN, 1, [(4096, b"")]) + k + u8(B_TIME) + k)
    for d in (0, 1):
        s[f"shrunk-disk-drive{d}"] = blk(d, u8(B_SHRINK) + u16(1000) +
                                         blk_req(T_IN, 5, [(512, b"")]) + k +
                                         blk_req(T_IN, 1, [(1024, b"")]) + k +
                                         blk_req(T_OUT, 60, [(512, b"w")]) + k +
                                         blk_req(T_FLUSH) + k)
    return s


# ---- fuzz_virtio_net -----------------------------------------------------------
N_DESC, N_CHAIN, N_TX, N_RXBUF, N_WIRE, N_KICK, N_LOOP, N_DRAIN = 0, 1, 2, 4, 6, 7, 9, 10
N_PUBLISH, N_AVAIL, N_FLAGS, N_RECYCLE, N_POKE, N_RESET = 11, 12, 13, 14, 15, 79
N_TIME = 10 | 0x40  # time passes: the rate limiters refill, their timers fire
N_LIMITED = 2  # the rate-limited device
TXQ = 0x80  # on the generic ops and kicks: the TX queue (else RX)
# feature bits (virtio_net.h)
F_CSUM, F_GUEST_CSUM, F_GUEST_TSO4, F_GUEST_TSO6, F_GUEST_UFO = 0, 1, 7, 8, 10
F_HOST_TSO4, F_HOST_TSO6, F_HOST_UFO, F_MRG = 11, 12, 14, 15
GUEST_GSO = (1 << F_GUEST_TSO4) | (1 << F_GUEST_TSO6) | (1 << F_GUEST_UFO)
FRAME_EDGES = [0, 1, 13, 14, 60, 1514, 1518, 1519, 9014, 9018, 9019, 65549, 65550, 65553,
               65554, 65535, 65521, 65522]
RX_SIZES = [0, 1, 11, 12, 13, 64, 100, 1526, 1530, 1531, 2048, 4096, 9026, 9030, 9031, 65562,
            65565, 65566, 32768, 16384]
H_NONE, H_CSUM, H_TSO4, H_TSO6, H_UFO, H_ECN, H_RAW = range(7)


def frame_len(n):
    if n % 8 == 0 and n // 8 < 0xC0:
        return u8(n // 8)
    if n in FRAME_EDGES:
        return u8(0xC0 + FRAME_EDGES.index(n))
    return u8(0xFF) + u16(n)


def net_tx(kind=H_NONE, ln=60, vlan=False, layout=0, cuts=(), writable=False, raw=b"",
           flags=None, hdr_len=None, start=None, off=None, gso_size=None, data=b"",
           publish=True):
    """op_tx: header kind and overrides, frame length, layout 0-3."""
    shape = (4 if vlan else 0) | layout << 4 | (0x40 if writable else 0) | \
        (0 if publish else 0x80)
    k = kind
    over = b""
    for bit, v, enc in ((0x08, flags, u8), (0x10, hdr_len, u16), (0x20, start, u16),
                        (0x40, off, u16), (0x80, gso_size, u16)):
        if v is not None:
            k |= bit
            over += enc(v)
    out = u8(N_TX) + u8(shape) + u8(k) + (raw.ljust(12, b"\0") if kind == H_RAW else b"")
    out += over + frame_len(ln) + fill(data)
    if layout == 3:
        out += b"".join(u16(c) for c in cuts)
    return out


def net_rx_bufs(n=4, size=2048, segs=1, publish=True):
    sel = RX_SIZES.index(size) if size in RX_SIZES else size // 16
    return u8(N_RXBUF) + u8((n - 1) | (segs - 1) << 4 | (0 if publish else 0x80)) + u8(sel)


def net_wire(ln=60, vlan=False, hdr=None, short=None, data=b""):
    shape = (1 if hdr is not None else 0) | (2 if short is not None else 0) | (4 if vlan else 0)
    out = u8(N_WIRE) + u8(shape) + frame_len(ln)
    if hdr is not None:
        out += hdr.ljust(12, b"\0")
    out += fill(data)
    if short is not None:
        out += u8(short)
    return out


def net(dev=0, ops=b"", clear=0, rxq=None, txq=None):
    """dev 0: MTU 1500 and a MAC; dev 1: MTU 9000."""
    return u8(dev) + negotiate(clear=clear) + (rxq or queue(5)) + (txq or queue(5)) + ops


def net_seeds():
    ktx, krx, loop = u8(N_KICK | TXQ), u8(N_KICK), u8(N_LOOP)
    drain = u8(N_DRAIN) + u8(255)
    s = {}
    s["tx-plain"] = net(0, net_tx(data=b"hello") + ktx + drain)
    s["tx-offloads"] = net(0, net_tx(H_CSUM, 100) + net_tx(H_TSO4, 3000) +
                           net_tx(H_TSO6, 3000) + net_tx(H_UFO, 3000) + ktx + drain)
    s["tx-ecn"] = net(0, net_tx(H_ECN, 3000) + ktx)
    s["tx-sizes"] = net(0, net_tx(H_NONE, 1514) + net_tx(H_NONE, 1518, vlan=True) +
                        net_tx(H_NONE, 1519) + net_tx(H_NONE, 13) + net_tx(H_NONE, 14) +
                        net_tx(H_TSO4, 65549) + net_tx(H_TSO4, 65553, vlan=True) +
                        net_tx(H_TSO4, 65554, vlan=True) + ktx + drain)
    s["tx-jumbo"] = net(1, net_tx(H_NONE, 9014) + net_tx(H_NONE, 9018, vlan=True) +
                        net_tx(H_NONE, 9019) + ktx + drain)
    s["tx-layouts"] = net(0, net_tx(layout=1) + net_tx(layout=2) +
                          net_tx(H_TSO4, 3000, layout=3, cuts=(3, 40, 1000)) +
                          net_tx(H_NONE, 0, layout=1) + net_tx(writable=True) + ktx + drain)
    s["tx-refused-by-tap"] = net(0, net_tx(hdr_len=5) + net_tx(H_CSUM, start=0) +
                                 net_tx(H_TSO4, 3000, off=6) + net_tx(H_TSO4, 3000,
                                                                       gso_size=0xFFFF) +
                                 net_tx(H_NONE, 60) + ktx + drain)
    s["tx-header-fields"] = net(0, net_tx(flags=2) + net_tx(H_CSUM, 60, start=60) +
                                net_tx(H_TSO4, 3000, hdr_len=4000) +
                                net_tx(H_TSO4, 3000, gso_size=0) + net_tx(H_TSO4, 3000, flags=0) +
                                net_tx(H_RAW, raw=bytes([1, 4, 0x40, 0, 0x40, 5, 0x36, 0,
                                                         0x10, 0])) + ktx)
    s["tx-not-negotiated"] = net(0, net_tx(H_CSUM) + net_tx(H_TSO4, 3000) + ktx,
                                 clear=(1 << F_CSUM) | (1 << F_HOST_TSO4))
    s["tx-full-tap"] = net(0, b"".join(net_tx(H_TSO4, 65549) for _ in range(12)) + ktx +
                           drain + loop + ktx + drain + loop, txq=queue(5))
    s["rx-merged"] = net(0, net_rx_bufs(4, 1526) + krx + net_wire(60, data=b"abc") + loop +
                         net_wire(1514) + loop + net_rx_bufs(8, 2048) + krx +
                         net_wire(3000) + loop)
    s["rx-merged-short"] = net(0, net_rx_bufs(2, 100) + krx + net_wire(60) + loop +
                               net_rx_bufs(1, 4096) + krx + loop)
    s["rx-one-chain"] = net(0, net_rx_bufs(4, 1530, segs=3) + krx + net_wire(1514) + loop +
                            net_wire(1518, vlan=True) + loop,
                            clear=(1 << F_MRG) | GUEST_GSO)
    s["rx-one-chain-too-small"] = net(0, net_rx_bufs(4, 1526) + krx + net_wire(60) + loop,
                                      clear=(1 << F_MRG) | GUEST_GSO)
    s["rx-gso"] = net(0, net_rx_bufs(2, 65562) + krx + net_wire(65549) + loop +
                      net_wire(65550) + loop, clear=1 << F_MRG)
    s["rx-bad-chains"] = net(0, net_rx_bufs(2, 0) + net_rx_bufs(2, 11) +
                             chain(N_CHAIN, [(64, False, b"r", None)]) + net_rx_bufs(4, 2048) +
                             krx + net_wire(60) + loop)
    s["rx-oversize-and-runts"] = net(0, net_rx_bufs(16, 64) + krx + net_wire(65535) + loop +
                                     net_wire(short=5) + loop + net_wire(short=0) + loop,
                                     clear=1 << F_MRG)
    s["rx-before-buffers"] = net(1, net_wire(9014) + net_wire(60) + loop +
                                 net_rx_bufs(2, 9030) + krx + u8(N_RECYCLE) + u8(2) + krx +
                                 loop)
    s["rx-event-idx"] = net(0, u8(N_FLAGS) + u8(0) + u16(0) + net_rx_bufs(4) + krx +
                            net_wire() + loop + u8(N_FLAGS) + u8(1) + u16(0) + net_wire() + loop)
    s["ring-abuse"] = net(0, u8(N_AVAIL | TXQ) + u16(40) + ktx + u8(N_PUBLISH) + u16(77) + krx +
                          desc(N_DESC, 0, NEXT | WRITE, 0, 64) + u8(N_PUBLISH) + u16(0) + krx)
    s["reset-mid-stream"] = net(0, net_rx_bufs(4) + krx + net_tx() + u8(N_RESET) + negotiate() +
                                queue(4) + queue(4) + net_tx() + ktx + net_wire() + loop)
    s["bad-queues"] = net(0, net_tx() + ktx, rxq=queue(size=3), txq=queue(4, ready=False))
    s["rate-limited"] = net(N_LIMITED, b"".join(net_tx(ln=100) for _ in range(6)) + ktx + drain +
                            u8(N_TIME) + drain + net_tx(ln=3000) + ktx + u8(N_TIME) + drain +
                            net_rx_bufs(8, 2048) + krx + b"".join(net_wire(200) for _ in range(5)) +
                            loop + u8(N_TIME) + loop + net_wire(1514) + loop + u8(N_TIME))
    return s


# ---- fuzz_vsock ----------------------------------------------------------------
V_TX, V_BURST, V_RXBUF, V_EVBUF, V_KICK, V_LOOP, V_CONNECT, V_WRITE, V_READ, V_CLOSE = (
    0, 2, 3, 5, 6, 8, 10, 11, 12, 13)
V_ACCEPT = 14
V_EXPIRE, V_TRESET, V_DESC, V_CHAIN, V_PUBLISH, V_AVAIL, V_FLAGS, V_RECYCLE, V_POKE = (
    15, 16, 17, 18, 19, 20, 21, 22, 23)
RXQ, TXQ_, EVQ = 0, 1, 2
HPF = 1 << 30
VPORTS = [1024, 52, 1025, 0, 0xFFFFFFFF, HPF, HPF + 1, HPF + 2, 5000, 5001]
OP_REQUEST, OP_RESPONSE, OP_RST, OP_SHUTDOWN, OP_RW, OP_CREDIT_UPDATE, OP_CREDIT_REQUEST = range(
    1, 8)


def vop(x, q=RXQ):
    """The op byte for operation @x (mod 24) on queue @q (bits 6-7)."""
    return u8(next(o for o in range(256) if o % 24 == x and o >> 6 == q))


def vport(p):
    return u8(VPORTS.index(p)) if p in VPORTS else u8(0xFF) + u32(p)


def vlen(n):
    edges = [0, 1, 4096, 65536, 65537]
    if n < 0xF0:
        return u8(n)
    if n in edges:
        return u8(0xF0 + edges.index(n))
    return u8(0xFF) + u32(n)


def vtx(op, src=5000, dst=1024, ln=0, data=b"", shut=0, flags=None, credit=None, cids=None,
        avail=None, layout=0, short=None, writable=False, raw_op=None, publish=True):
    """op_tx: credit=(buf_alloc, fwd_cnt), cids=(src_cid, dst_cid, type)."""
    kind = (op & 7) | shut << 4
    if raw_op is not None or op > 7:
        raw_op = op if raw_op is None else raw_op
        kind |= 0x80
    if flags is not None:
        kind |= 0x08
    if credit is not None:
        kind |= 0x40
    shape = layout | (0x08 if cids else 0) | (0x04 if avail is not None else 0) | \
        (0x40 if writable else 0) | (0 if publish else 0x80)
    out = u8(V_TX) + u8(shape) + u8(kind) + vport(src) + vport(dst)
    if raw_op is not None:
        out += u16(raw_op)
    out += vlen(ln)
    if flags is not None:
        out += u32(flags)
    if credit is not None:
        out += u32(credit[0]) + u32(credit[1])
    if cids:
        out += u64(cids[0]) + u64(cids[1]) + u16(cids[2])
    if avail is not None:
        out += u16(avail)
    out += fill(data)
    if layout == 3:
        out += u8(short)
    return out


def vbufs(n=8, size=4140, segs=1, ev=False):
    sizes = [0, 1, 4, 8, 43, 44, 45, 100, 4096, 4140, 65580, 65581]
    sel = sizes.index(size) if size in sizes else size // 8
    return u8(V_EVBUF if ev else V_RXBUF) + u8((n - 1) | (segs - 1) << 4) + u8(sel)


def vconnect(port=None, raw=None, partial=False):
    if raw is not None:
        return u8(V_CONNECT) + u8(2) + u8(len(raw)) + raw
    if port is None:
        return u8(V_CONNECT) + u8(3)
    return u8(V_CONNECT) + u8(1 if partial else 0) + vport(port)


def vwrite(peer=0, data=b"", big=None):
    if big is not None:  # 4 KiB * (1 + n) (n < 16), or 256 KiB (n = 16)
        return u8(V_WRITE) + u8(0x80 | (0x40 if big == 16 else 0) | peer) + u8(big & 15)
    return u8(V_WRITE) + u8(peer) + u8(len(data)) + data


def vsock(ops=b"", qs=None):
    return negotiate() + (qs or (queue(6) + queue(6) + queue(3))) + ops


def vsock_seeds():
    krx, ktx, kev, loop = vop(V_KICK, RXQ), vop(V_KICK, TXQ_), vop(V_KICK, EVQ), u8(V_LOOP)
    rx = vbufs(16) + krx
    s = {}
    s["guest-connects"] = vsock(rx + vtx(OP_REQUEST) + ktx + u8(V_ACCEPT) +
                                vtx(OP_RW, ln=5, data=b"hello") + ktx + u8(V_READ) + u8(0) +
                                vwrite(0, b"world") + loop + vtx(OP_CREDIT_UPDATE) +
                                vtx(OP_CREDIT_REQUEST) + ktx + vtx(OP_SHUTDOWN, shut=2) + ktx +
                                vtx(OP_SHUTDOWN, shut=3) + ktx + loop)
    s["guest-connect-refused"] = vsock(rx + vtx(OP_REQUEST, dst=1025) + ktx +
                                       vtx(OP_REQUEST, dst=HPF) + ktx)
    s["host-connects"] = vsock(rx + vconnect(5000) + loop + loop + krx +
                               vtx(OP_RESPONSE, src=5000, dst=HPF) + ktx + u8(V_READ) + u8(0) +
                               vwrite(0, b"ping") + loop + vtx(OP_RW, 5000, HPF, 4, b"pong") +
                               ktx + u8(V_READ) + u8(0) + u8(V_CLOSE) + u8(0) + loop +
                               vtx(OP_RW, 5000, HPF, 1, b"x") + vtx(OP_CREDIT_UPDATE, 5000, HPF) +
                               vtx(OP_SHUTDOWN, 5000, HPF, shut=3) + ktx)
    s["host-connect-lines"] = vsock(rx + vconnect(raw=b"HELLO\n") + vconnect(5000, partial=True) +
                                    vconnect(raw=b"CONNECT \n") +
                                    vconnect(raw=b"CONNECT 99999999999\n") + vconnect() +
                                    vconnect(raw=b"CONNECT 7" + b"7" * 40) + loop + loop +
                                    u8(V_EXPIRE) + loop)
    s["host-connect-timeout"] = vsock(rx + vconnect(5001) + loop + loop + u8(V_EXPIRE) + loop)
    s["host-connect-guest-refuses"] = vsock(rx + vconnect(5001) + loop + loop +
                                            vtx(OP_RST, 5001, HPF) + ktx +
                                            vconnect(5000) + loop + loop +
                                            vtx(OP_RW, 5000, HPF + 1) + ktx)
    s["credit"] = vsock(rx + vtx(OP_REQUEST, credit=(10, 0)) + ktx + u8(V_ACCEPT) +
                        vwrite(0, big=0) + loop + vtx(OP_CREDIT_UPDATE, credit=(10, 10)) + ktx +
                        vtx(OP_CREDIT_UPDATE, credit=(0xFFFFFFFF, 0)) + ktx + loop)
    s["backlog"] = vsock(rx + vtx(OP_REQUEST) + ktx + u8(V_ACCEPT) +
                         b"".join(vtx(OP_RW, ln=65536) for _ in range(6)) + ktx +
                         u8(V_READ) + u8(0) + loop + u8(V_READ) + u8(0) + loop + krx)
    s["credit-overrun"] = vsock(rx + vtx(OP_REQUEST) + ktx +
                                b"".join(vtx(OP_RW, ln=65536) for _ in range(5)) + ktx)
    s["bad-packets"] = vsock(rx + vtx(OP_REQUEST, cids=(4, 2, 1)) +
                             vtx(OP_REQUEST, cids=(3, 1, 1)) + vtx(OP_REQUEST, cids=(3, 2, 2)) +
                             vtx(0) + vtx(8) + vtx(OP_RW, raw_op=0x105) +
                             vtx(OP_RW, ln=100, avail=50) + vtx(OP_RW, ln=65537) +
                             vtx(OP_REQUEST, ln=4, data=b"data") + vtx(OP_REQUEST, writable=True) +
                             vtx(OP_REQUEST, layout=3, short=20) + vtx(OP_REQUEST, layout=1) +
                             vtx(OP_REQUEST, layout=2) + vtx(OP_RST, flags=0xFFFF) + ktx)
    s["rx-buffer-sizes"] = vsock(vbufs(2, 0) + vbufs(2, 43) + vbufs(2, 44) + vbufs(2, 45) +
                                 vbufs(2, 100, segs=3) + krx + vtx(OP_REQUEST) + ktx +
                                 u8(V_ACCEPT) + vwrite(0, b"0123456789" * 20) + loop +
                                 vbufs(4, 65581) + krx + vwrite(0, big=16) + loop)
    s["transport-reset"] = vsock(vbufs(2, 4, ev=True) + kev + rx + vtx(OP_REQUEST) + ktx +
                                 u8(V_TRESET) + vbufs(1, 1, ev=True) + u8(V_TRESET) +
                                 vtx(OP_RW, ln=1) + ktx)
    s["wrong-state"] = vsock(rx + vtx(OP_RESPONSE) + vtx(OP_RW, ln=3) + vtx(OP_REQUEST) +
                             vtx(OP_REQUEST) + ktx + vtx(OP_REQUEST) + vtx(OP_RESPONSE) + ktx)
    s["no-rx-buffers"] = vsock(b"".join(vtx(OP_REQUEST, dst=1025, src=i + 10000)
                                        for i in range(40)) + ktx + rx)
    s["control-queue-full"] = vsock(vtx(OP_REQUEST, dst=1025) + ktx + u8(V_BURST) + u8(200) +
                                    rx + vtx(OP_RW, ln=1) + ktx)
    s["reset-mid-connection"] = vsock(rx + vtx(OP_REQUEST) + ktx + u8(V_ACCEPT) +
                                      vop(V_POKE, 2) + negotiate() + queue(4) + queue(4) +
                                      queue(2) + rx + vtx(OP_RW, ln=1) + ktx)
    s["ring-abuse"] = vsock(vop(V_AVAIL, TXQ_) + u16(500) + ktx +
                            vop(V_PUBLISH, RXQ) + u16(300) + krx +
                            desc(next(o for o in range(256) if o % 24 == V_DESC and o >> 6 == 0),
                                 0, NEXT, 0, 64) + u8(V_PUBLISH) + u16(0) + krx)
    s["bad-queues"] = vsock(rx + vtx(OP_REQUEST) + ktx,
                            qs=queue(size=3) + queue(4, ready=False) + queue(4))
    return s


# ---- fuzz_mmio -----------------------------------------------------------------
M_WRITE, M_READ, M_BRING_UP, M_CHAIN, M_POKE, M_LOOP, M_NOTIFY, M_STATUS = 0, 4, 6, 7, 8, 9, 10, 11
DEV_BLK, DEV_NET, DEV_VSOCK = 0, 1, 2
NR_QUEUES = {DEV_BLK: 1, DEV_NET: 2, DEV_VSOCK: 3}
ACK, DRIVER, DRIVER_OK, FEATURES_OK = 1, 2, 4, 8
(R_MAGIC, R_VERSION, R_DEVICE_ID, R_VENDOR, R_DEV_FEAT, R_DEV_FEAT_SEL, R_DRV_FEAT, R_DRV_FEAT_SEL,
 R_QSEL, R_QNUM_MAX, R_QNUM, R_QREADY, R_QNOTIFY, R_ISR, R_IACK, R_STATUS, R_QDESC, R_QDESC_HI,
 R_QDRIVER, R_QDRIVER_HI, R_QDEVICE, R_QDEVICE_HI, R_SHM_SEL, R_SHM_LEN, R_SHM_LEN_HI,
 R_GEN) = (0x000, 0x004, 0x008, 0x00C, 0x010, 0x014, 0x020, 0x024, 0x030, 0x034, 0x038, 0x044,
           0x050, 0x060, 0x064, 0x070, 0x080, 0x084, 0x090, 0x094, 0x0A0, 0x0A4, 0x0AC, 0x0B0,
           0x0B4, 0x0FC)
WIDTH = {4: 0, 1: 4, 2: 5, 8: 6}


def reg(off, config=False):
    if config and off < 64:
        return u8(0x40 + off)
    if not config and off % 4 == 0 and off < 0x100:
        return u8(off // 4)
    return u8(0x80) + u16(off + (0x100 if config else 0))


def mw(off, v, width=4, config=False):
    w = WIDTH[width] | (0x80 if v > 0xFFFFFFFF else 0)
    return u8(M_WRITE) + u8(w) + reg(off, config) + (u64(v) if w & 0x80 else u32(v))


def mr(off, width=4, config=False):
    return u8(M_READ) + u8(WIDTH[width]) + reg(off, config)


def mqueue(q, size, desc, avail, used, ready=1):
    return (mw(R_QSEL, q) + mr(R_QNUM_MAX) + mw(R_QNUM, size) + mw(R_QDESC, desc & 0xFFFFFFFF) +
            mw(R_QDESC_HI, desc >> 32) + mw(R_QDRIVER, avail & 0xFFFFFFFF) +
            mw(R_QDRIVER_HI, avail >> 32) + mw(R_QDEVICE, used & 0xFFFFFFFF) +
            mw(R_QDEVICE_HI, used >> 32) + mw(R_QREADY, ready) + mr(R_QREADY))


def mfeatures(lo, hi):
    return (mw(R_DEV_FEAT_SEL, 0) + mr(R_DEV_FEAT) + mw(R_DEV_FEAT_SEL, 1) + mr(R_DEV_FEAT) +
            mw(R_DRV_FEAT_SEL, 0) + mw(R_DRV_FEAT, lo) + mw(R_DRV_FEAT_SEL, 1) + mw(R_DRV_FEAT, hi))


def mbring_up(dev):
    return u8(M_BRING_UP) + negotiate() + queue(4) * NR_QUEUES[dev]


def mmio_seeds():
    s = {}
    for dev, name in ((DEV_BLK, "blk"), (DEV_NET, "net"), (DEV_VSOCK, "vsock")):
        nq = NR_QUEUES[dev]
        good = b"".join(mqueue(q, 16, 0x10000 * (q + 1), 0x10000 * (q + 1) + 0x1000,
                               0x10000 * (q + 1) + 0x2000) for q in range(nq))
        up = (mw(R_STATUS, 0) + mr(R_MAGIC) + mr(R_VERSION) + mr(R_DEVICE_ID) + mr(R_VENDOR) +
              mw(R_STATUS, ACK) + mw(R_STATUS, ACK | DRIVER) + mfeatures(0, 1) +
              mw(R_STATUS, ACK | DRIVER | FEATURES_OK) + mr(R_STATUS) + good +
              mw(R_STATUS, ACK | DRIVER | FEATURES_OK | DRIVER_OK) + mr(R_STATUS))
        s[f"{name}-by-hand"] = u8(dev) + up + mw(R_QNOTIFY, 0) + mr(R_ISR) + mw(R_IACK, 1) + \
            mr(R_GEN) + mw(R_STATUS, 0) + mr(R_STATUS)
        s[f"{name}-config"] = u8(dev) + up + b"".join(
            mr(o, w, config=True) for o in range(0, 24, 4) for w in (1, 2, 4, 8)) + \
            mr(60, 8, config=True) + mw(0, 0xFFFF, 2, config=True) + mr(0xEFC, 8, config=True) + \
            mr(0xEF8, 8, config=True) + mw(0xEF9, 1, 8, config=True)
        s[f"{name}-status-order"] = u8(dev) + mw(R_STATUS, ACK | DRIVER | DRIVER_OK) + \
            mr(R_STATUS) + mw(R_STATUS, 0) + mw(R_STATUS, ACK | DRIVER) + mfeatures(0, 0) + \
            mw(R_STATUS, ACK | DRIVER | FEATURES_OK) + mr(R_STATUS) + mfeatures(0, 1 | 0x100) + \
            mw(R_STATUS, ACK | DRIVER | FEATURES_OK) + mw(R_STATUS, 0xFF) + \
            mw(R_STATUS, ACK) + mw(R_STATUS, 0x40 | ACK | DRIVER) + mw(R_STATUS, 0x80 | 3) + \
            mr(R_STATUS)
        bad = mqueue(0, 3, 0x10000, 0x11000, 0x12000) + mqueue(0, 512, 0x10000, 0x11000,
                                                               0x12000)
        s[f"{name}-hostile-queues"] = u8(dev) + mw(R_STATUS, ACK | DRIVER) + mfeatures(0, 1) + \
            mw(R_STATUS, ACK | DRIVER | FEATURES_OK) + bad + \
            mqueue(0, 16, 0x10008, 0x11000, 0x12000) + mqueue(0, 16, 0x20FFF0, 0x11000, 0x12000) + \
            mqueue(0, 16, 0x10000, 0xFFFFF, 0x12000) + mqueue(0, 16, 0x10000, 0x11000, 0x10000) + \
            mqueue(0, 16, 1 << 40, 0x11000, 0x12000) + mqueue(7, 16, 0, 0, 0) + \
            mw(R_QNUM, 0x10000) + mw(R_QREADY, 3) + \
            mw(R_STATUS, ACK | DRIVER | FEATURES_OK | DRIVER_OK) + mr(R_STATUS) + \
            mw(R_QNOTIFY, 0) + mw(R_STATUS, 0) + up
        s[f"{name}-after-driver-ok"] = u8(dev) + mbring_up(dev) + mw(R_QSEL, 0) + \
            mw(R_QNUM, 8) + mw(R_QDESC, 0x40000) + mw(R_QREADY, 0) + mfeatures(0xFFFFFFFF, 1) + \
            mw(R_STATUS, ACK) + mw(R_STATUS, ACK | DRIVER | FEATURES_OK | DRIVER_OK | 0x40) + \
            mr(R_STATUS) + mw(R_QNOTIFY, 0)
        s[f"{name}-notify"] = u8(dev) + mbring_up(dev) + \
            chain(M_CHAIN, [(16, False, b"\0" * 16, None), (512, True, b"", None),
                            (1, True, b"", None)]) + \
            mw(R_QNOTIFY, 0) + mw(R_QNOTIFY, nq) + mw(R_QNOTIFY, 0, 2) + mw(R_QNOTIFY, 1 << 40) + \
            u8(M_NOTIFY | (nq - 1) << 6) + u8(M_LOOP) + mr(R_ISR) + mw(R_IACK, 3)
        s[f"{name}-widths"] = u8(dev) + b"".join(mr(o, w) for o in (0, 8, 0x10, 0x34, 0x70, 0xFC)
                                                for w in (1, 2, 8)) + \
            mr(0x71) + mr(0xFD) + mr(0xFFC) + mr(0xFFC, 8) + mw(0x71, 7) + mw(0x72, 7, 2) + \
            mw(R_STATUS, ACK | DRIVER, 1) + mw(R_STATUS, ACK | DRIVER | (1 << 40), 8)
        s[f"{name}-selectors"] = u8(dev) + mw(R_DEV_FEAT_SEL, 2) + mr(R_DEV_FEAT) + \
            mw(R_DEV_FEAT_SEL, 0xFFFFFFFF) + mr(R_DEV_FEAT) + mw(R_STATUS, ACK | DRIVER) + \
            mw(R_DRV_FEAT_SEL, 5) + mw(R_DRV_FEAT, 0xFFFFFFFF) + mw(R_QSEL, 0xFFFFFFFF) + \
            mr(R_QNUM_MAX) + mr(R_QREADY) + mw(R_QREADY, 1) + mw(R_SHM_SEL, 0) + mr(R_SHM_LEN) + \
            mr(R_SHM_LEN_HI) + u8(M_STATUS) + u8(0)
    return s


# ---- fuzz_virtio_rng -----------------------------------------------------------
R_DESC, R_CHAIN, R_REQ, R_PUBLISH, R_AVAIL, R_FLAGS, R_RECYCLE, R_POKE, R_KICK = (
    0, 1, 2, 5, 6, 7, 8, 9, 10)
# The harness switches on op % 12, then bits 7 and 6: each of these is
# that residue with the bit it needs.
R_SOURCE = 129  # 9 with bit 7: the stand-in entropy source's behaviour from now on
R_TIME = 69  # 9 with bit 6: time passes, the rate limiter refills, its timer fires
R_RESET = 131  # 11 with bit 7: the driver resets and sets the device up again
R_RESTORE = 71  # 11 with bit 6: snapshot and restore into a fresh device
R_LIMITED = 1


def rng_req(lens, readable=None, publish=True, plus1=False):
    """op_request: buffers of @lens bytes (under 128, or whole KiB up to 127 KiB;
    @plus1 adds a byte to the KiB ones), buffer @readable device-readable."""
    shape = (len(lens) - 1) | (0 if publish else 8) | (0x40 if plus1 else 0)
    if readable is not None:
        shape |= 4 | readable << 4
    out = u8(R_REQ) + u8(shape)
    for n in lens:
        assert n < 128 or (n % 1024 == 0 and 0 < n // 1024 < 128), n
        out += u8(n) if n < 128 else u8(0x80 | n // 1024)
    return out


def rng_source(fail_every=0, short=None, eintr=False):
    """op_source: fail every Nth call (0-7), return at most 1 + 7 * short bytes."""
    mode = fail_every | (0x08 if short is not None else 0) | (0x10 if eintr else 0)
    return u8(mode) + (u8(short) if short is not None else b"")


def rng(kind=0, ops=b"", source=None, q=None, feat=None):
    first = kind | (2 if source is not None else 0)
    return u8(first) + (source or b"") + (feat or negotiate()) + (q or queue(4)) + ops


def rng_seeds():
    k = u8(R_KICK)
    s = {}
    s["one-chain"] = rng(0, rng_req([64]) + k)
    s["split-chains"] = rng(0, rng_req([1, 100, 127]) + rng_req([4096, 8192]) + k +
                            rng_req([16, 16, 16, 16]) + k)
    s["batch"] = rng(0, b"".join(rng_req([1024]) for _ in range(12)) + k, q=queue(4))
    s["capped"] = rng(0, rng_req([127 * 1024]) + k + rng_req([40 * 1024, 40 * 1024]) + k +
                      rng_req([64 * 1024], plus1=True) + k)
    s["readable"] = rng(0, rng_req([64], readable=0) + k + rng_req([64, 64], readable=1) + k +
                        rng_req([64]) + k)
    s["zero-length"] = rng(0, rng_req([0]) + k + rng_req([0, 0]) + k + rng_req([0, 8]) + k)
    s["generic-chain"] = rng(0, chain(R_CHAIN, [(16, False, b"abc", None), (64, True, b"", None)]) +
                             k + chain(R_CHAIN, [(64, True, b"", None), (16, False, b"x", None)]) + k)
    s["desc-loop"] = rng(0, desc(R_DESC, 0, NEXT | WRITE, 1, 16) +
                         desc(R_DESC, 1, NEXT | WRITE, 0, 16) + u8(R_PUBLISH) + u16(0) + k +
                         rng_req([32]) + k)
    s["indirect"] = rng(0, desc(R_DESC, 0, INDIRECT | WRITE, 0, 64) + u8(R_PUBLISH) + u16(0) + k)
    s["next-outside"] = rng(0, desc(R_DESC, 0, NEXT | WRITE, 200, 16) + u8(R_PUBLISH) + u16(0) + k)
    s["buffers-outside-ram"] = rng(0, desc(R_DESC, 0, WRITE, 0, 512, gpa("edge", 0xF8, 1)) +
                                   u8(R_PUBLISH) + u16(0) +
                                   desc(R_DESC, 1, WRITE, 0, 16, gpa("raw", (1 << 64) - 8)) +
                                   u8(R_PUBLISH) + u16(1) + k)
    s["avail-runs-ahead"] = rng(0, u8(R_AVAIL) + u16(100) + k)
    s["head-outside"] = rng(0, u8(R_PUBLISH) + u16(300) + k)
    s["event-idx"] = rng(0, u8(R_FLAGS) + u8(0) + u16(1) + rng_req([8]) + k + rng_req([8]) + k +
                         u8(R_FLAGS) + u8(1) + u16(0) + rng_req([8]) + k)
    s["recycle"] = rng(0, rng_req([8]) + rng_req([8]) + k + u8(R_RECYCLE) + u8(2) + k)
    s["source-fails"] = rng(0, rng_req([64]) + rng_req([64]) + rng_req([64]) + k,
                            source=rng_source(fail_every=2))
    s["source-short-eintr"] = rng(0, rng_req([4096, 100]) + k + u8(R_SOURCE) +
                                  rng_source(fail_every=3, short=5) + rng_req([1024] * 3) +
                                  rng_req([100]) + rng_req([64]) + k,
                                  source=rng_source(short=1, eintr=True))
    s["rate-limited"] = rng(R_LIMITED, b"".join(rng_req([8192]) for _ in range(8)) + k +
                            u8(R_TIME) + b"".join(rng_req([64 * 1024]) for _ in range(3)) + k +
                            u8(R_TIME) + u8(R_TIME) + k)
    s["restore"] = rng(0, rng_req([64]) + k + rng_req([100]) + u8(R_RESTORE) + rng_req([32]) + k)
    s["restore-throttled"] = rng(R_LIMITED, b"".join(rng_req([4096]) for _ in range(10)) + k +
                                 u8(R_RESTORE) + k + u8(R_TIME) + k)
    s["reset-mid-stream"] = rng(0, rng_req([64]) + u8(R_RESET) + negotiate() + queue(4) +
                                rng_req([64]) + k)
    s["queue-not-ready"] = rng(0, rng_req([64]) + k, q=queue(4, ready=False))
    s["bad-queue-size"] = rng(0, rng_req([64]) + k, q=queue(size=3))
    s["queue-outside-ram"] = rng(0, k, q=queue(4, hostile=[gpa("ram", 0x10000),
                                                           gpa("ram", 0x11000),
                                                           gpa("edge", 0xF0, 1)]))
    s["no-version-1"] = rng(0, rng_req([64]) + k, feat=negotiate(False))
    return s


TARGETS = {
    "fuzz_virtio_blk": blk_seeds,
    "fuzz_virtio_net": net_seeds,
    "fuzz_virtio_rng": rng_seeds,
    "fuzz_vsock": vsock_seeds,
    "fuzz_mmio": mmio_seeds,
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
