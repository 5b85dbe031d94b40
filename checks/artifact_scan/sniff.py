"""Format detection from the first bytes of a stream (never from the file name)."""

from __future__ import annotations

import pickletools

HEAD = 512  # bytes the sniffer looks at; a tar header block is 512 bytes

COMPRESSIONS = ("gzip", "bz2", "xz", "lzma", "zlib", "zfile", "lz4", "zstd")
_OPCODE_BYTES = frozenset(ord(op.code) for op in pickletools.opcodes)
_MAGIC = (
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"PK\x07\x08", "zip"),
    (b"\x93NUMPY", "npy"),
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


def sniff(head: bytes) -> str:
    """One of: zip, npy, tar, pickle (starts with PROTO), maybe_pickle (starts with an opcode),
    a compression from COMPRESSIONS, or data."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[3:4] != b"0":
        return "bz2"
    if head[:2] == b"ZF" and _is_zfile(head):
        return "zfile"
    if len(head) >= 2 and head[0] == 0x80 and head[1] <= 5:
        return "pickle"
    if head[:2] == b"]\x00" and len(head) >= 13:  # LZMA "alone" header: props 0x5d, dict size...
        return "lzma"  # ...an EMPTY_LIST followed by 0x00 is never a valid pickle
    if len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0:
        return "zlib"
    if _is_tar(head):
        return "tar"
    if head and head[0] in _OPCODE_BYTES:
        return "maybe_pickle"
    return "data"


def _is_zfile(head: bytes) -> bool:
    """joblib < 0.10 compressed files: b'ZF', the length as hex padded to 19 bytes, zlib data."""
    length = head[2:21].strip(b" ").rstrip(b"L")
    return length.startswith(b"0x") and all(c in b"0123456789abcdef" for c in length[2:].lower())


def _is_tar(head: bytes) -> bool:
    if len(head) < 512:
        return False
    if head[257:262] == b"ustar":
        return True
    try:  # old (v7) tar: the header checksum is the only marker
        stored = int(head[148:156].strip(b" \x00") or b"-1", 8)
    except ValueError:
        return False
    computed = sum(head[:148]) + 8 * 32 + sum(head[156:512])
    return stored == computed and head[0] != 0
