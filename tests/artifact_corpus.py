"""Corpus for the artifact scanner tests: hand-assembled pickles and containers with harmless canary
payloads (each would create a canary file if loaded), and benign artifacts written by the real
libraries. Nothing here is ever loaded; the tests assert the canary never appears.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import pickle
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# -- a tiny pickle assembler ------------------------------------------------------------------------


def op(code: str, arg: bytes = b"") -> bytes:
    return code.encode("latin-1") + arg


PROTO = lambda n: op("\x80", bytes([n]))  # noqa: E731
STOP = op(".")
MARK = op("(")
TUPLE = op("t")
TUPLE1 = op("\x85")
TUPLE2 = op("\x86")
REDUCE = op("R")
BUILD = op("b")
OBJ = op("o")
NEWOBJ = op("\x81")
NEWOBJ_EX = op("\x92")
MEMOIZE = op("\x94")
STACK_GLOBAL = op("\x93")
EMPTY_DICT = op("}")
EMPTY_TUPLE = op(")")
POP = op("0")
SETITEM = op("s")


def glob(module: str, name: str) -> bytes:
    return op("c", f"{module}\n{name}\n".encode())


def inst(module: str, name: str) -> bytes:
    return op("i", f"{module}\n{name}\n".encode())


def ustr(text: str) -> bytes:
    data = text.encode()
    return (
        op("\x8c", bytes([len(data)]) + data)
        if len(data) < 256
        else op("X", struct.pack("<I", len(data)) + data)
    )


def binunicode(text: str) -> bytes:
    data = text.encode()
    return op("X", struct.pack("<I", len(data)) + data)


def string0(text: str) -> bytes:
    return op("S", repr(text).encode() + b"\n")


def binput(i: int) -> bytes:
    return op("q", bytes([i]))


def binget(i: int) -> bytes:
    return op("h", bytes([i]))


def long_binput(i: int) -> bytes:
    return op("r", struct.pack("<I", i))


def long_binget(i: int) -> bytes:
    return op("j", struct.pack("<I", i))


def put0(i: int) -> bytes:
    return op("p", f"{i}\n".encode())


def get0(i: int) -> bytes:
    return op("g", f"{i}\n".encode())


def touch(canary: Path) -> str:
    return f"touch {canary}"


# -- canary payloads written by the real pickler ------------------------------------------------


class SystemCanary:
    """Unpickling this runs `touch <canary>` through os.system."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self):
        return (os.system, (touch(self.canary),))


class OpenCanary:
    """Unpickling this creates <canary> through builtins.open."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self):
        return (open, (str(self.canary), "w"))


class TeamModel:
    """A class that is on no allowlist: a team's own model class."""

    def __init__(self) -> None:
        self.weights = [1.0, 2.0]


# -- containers ------------------------------------------------------------------------------------


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def tar_bytes(members: dict[str, bytes], mode: str = "w") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def break_crcs(data: bytes) -> bytes:
    """Zero every CRC-32 in local and central headers (loaders that skip CRC checks still load)."""
    out = bytearray(data)
    for sig, crc_at in ((b"PK\x03\x04", 14), (b"PK\x01\x02", 16)):
        start = 0
        while (i := out.find(sig, start)) >= 0:
            out[i + crc_at : i + crc_at + 4] = b"\xde\xad\xbe\xef"
            start = i + 4
    return bytes(out)


def set_flag_bits(data: bytes, bits: int) -> bytes:
    """OR general-purpose flag bits into every local and central header."""
    out = bytearray(data)
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (i := out.find(sig, start)) >= 0:
            flags = struct.unpack_from("<H", out, i + flag_at)[0] | bits
            struct.pack_into("<H", out, i + flag_at, flags)
            start = i + 4
    return bytes(out)


def set_method(data: bytes, method: int) -> bytes:
    """Set the compression method of every local and central header."""
    out = bytearray(data)
    for sig, at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        start = 0
        while (i := out.find(sig, start)) >= 0:
            struct.pack_into("<H", out, i + at, method)
            start = i + 4
    return bytes(out)


def zip_with_symlink(name: str, target: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        info = zipfile.ZipInfo(name)
        info.external_attr = (0o120777 << 16) | 0x10
        zf.writestr(info, target)
    return buffer.getvalue()


def overlapping_zip(payload: bytes, copies: int = 3) -> bytes:
    """A zip whose central directory lists the same local entry several times (a bomb technique)."""
    data = zip_bytes({"a.bin": payload})
    cd_at = data.find(b"PK\x01\x02")
    eocd_at = data.find(b"PK\x05\x06")
    central = data[cd_at:eocd_at]
    entries = b"".join(central.replace(b"a.bin", f"{chr(97 + k)}.bin".encode()) for k in range(copies))
    eocd = bytearray(data[eocd_at:])
    struct.pack_into("<HHI", eocd, 8, copies, copies, len(entries))
    return data[:cd_at] + entries + bytes(eocd)


def compress(kind: str, data: bytes) -> bytes:
    return {"gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress, "zlib": zlib.compress}[kind](
        data
    )


# -- case tables -----------------------------------------------------------------------------------


@dataclass
class Expect:
    """A finding a case must produce: its `global` (or key prefix), severity, and optionally where."""

    what: str
    severity: str
    format: str | None = None  # a substring of evidence.format
    member: str | None = None
    invoked: bool | None = None


@dataclass
class Case:
    id: str
    build: Callable[[Path, Path], Path]  # (directory to write in, canary path) -> path to scan
    expect: list[Expect] = field(default_factory=list)
    policy: dict | None = None


def pickled(obj: object, protocol: int = pickle.HIGHEST_PROTOCOL) -> bytes:
    return pickle.dumps(obj, protocol=protocol)
