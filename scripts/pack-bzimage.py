#!/usr/bin/python3
"""Package a flat 64-bit payload as a bzImage (Linux boot protocol 2.15).

usage: pack-bzimage.py PAYLOAD.bin INIT_SIZE OUT

Writes a boot sector plus one setup sector carrying a real setup header
(boot flag, "HdrS", version, loadflags, xloadflags with XLF_KERNEL_64,
code32_start, cmdline_size, init_size, ...), then the payload, which the
loader places at 1 MiB and enters at +0x200 in long mode.
"""
import struct
import sys

SETUP_SECTS = 1
LOAD_ADDR = 0x100000
LOADED_HIGH = 0x01
XLF_KERNEL_64 = 0x01


def header(payload_len, init_size):
    setup = bytearray(512 * (SETUP_SECTS + 1))

    def put(off, fmt, *vals):
        struct.pack_into("<" + fmt, setup, off, *vals)

    put(0x1F1, "B", SETUP_SECTS)
    put(0x1F4, "I", (payload_len + 15) // 16)  # syssize, 16-byte units
    put(0x1FE, "H", 0xAA55)  # boot_flag
    put(0x200, "BB", 0xEB, 0x66)  # jmp over the header (real-mode entry)
    put(0x202, "4s", b"HdrS")
    put(0x206, "H", 0x020F)  # protocol 2.15
    put(0x211, "B", LOADED_HIGH)
    put(0x214, "I", LOAD_ADDR)  # code32_start
    put(0x22C, "I", 0x7FFFFFFF)  # initrd_addr_max
    put(0x230, "I", 0x200000)  # kernel_alignment
    put(0x234, "BBH", 0, 21, XLF_KERNEL_64)  # relocatable, min_alignment, xloadflags
    put(0x238, "I", 2047)  # cmdline_size
    put(0x258, "Q", LOAD_ADDR)  # pref_address
    put(0x260, "I", init_size)
    return bytes(setup)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    payload = open(sys.argv[1], "rb").read()
    init_size = int(sys.argv[2], 0)
    if init_size < len(payload):
        sys.exit("init_size smaller than the payload")
    with open(sys.argv[3], "wb") as f:
        f.write(header(len(payload), init_size))
        f.write(payload)


if __name__ == "__main__":
    main()
