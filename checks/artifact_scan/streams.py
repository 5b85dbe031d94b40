"""Bounded byte streams: a position-tracking reader, windows into files, capped decompression.

Nothing here interprets content. Decompression runs in bounded chunks and charges every produced
byte to the scan's budget, so bombs stop at a limit (an exception the scanner turns into a finding)
instead of exhausting memory or time.
"""

from __future__ import annotations

import bz2
import lzma
import os
import stat
import zlib
from collections.abc import Callable
from typing import IO, Protocol

CHUNK = 1 << 16


class Limit(Exception):
    """A scan limit was reached; `kind` names it (file_size, total_bytes, depth, compression_ratio…)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


class Corrupt(Exception):
    """The bytes do not decode as the format they claim (bad compression, truncated data)."""


class Truncated(Corrupt):
    """The stream ended where more bytes were required."""


class RawStream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Budget:
    """Decompressed bytes the whole scan may produce."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def charge(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise Limit("total_bytes", f"more than {self.limit} decompressed bytes in one scan")


class Reader:
    """Buffered reader over a raw stream that knows its absolute position.

    `readline` and length-prefixed reads are capped by the caller, and `skip` discards without
    keeping the bytes, so a hostile length field costs time bounded by the stream, never memory.
    `buf[pos:]` holds the bytes not consumed yet and `base` is the stream offset of `buf[0]`; the
    pickle machine's opcode loop reads them directly (one method call per opcode is the bottleneck).
    """

    def __init__(self, raw: RawStream, start: int = 0) -> None:
        self._raw = raw
        self.buf = b""
        self.pos = 0
        self.base = start
        self._eof = False
        self._rec: bytearray | None = None  # bytes consumed since start_recording, while recording
        self._rec_from = 0
        self._rec_cap = 0
        self._rec_over = False

    def tell(self) -> int:
        return self.base + self.pos

    def _fill(self, need: int) -> bool:
        """Make `need` bytes available after the position; False when the stream ends first."""
        while len(self.buf) - self.pos < need:
            if self._eof:
                return False
            chunk = self._raw.read(max(CHUNK, need - (len(self.buf) - self.pos)))
            if not chunk:
                self._eof = True
                return False
            if self._rec is not None:
                self._keep(self.buf[self._rec_from : self.pos])
                self._rec_from = 0
            self.base += self.pos
            self.buf = self.buf[self.pos :] + chunk
            self.pos = 0
        return True

    def start_recording(self, cap: int) -> None:
        """Keep a copy of the next bytes consumed (up to `cap`), for a second reading of them."""
        self._rec, self._rec_from, self._rec_cap, self._rec_over = bytearray(), self.pos, cap, False

    def stop_recording(self) -> bytes | None:
        """The bytes consumed since start_recording, or None when they exceeded the cap."""
        if self._rec is None:
            return None
        self._keep(self.buf[self._rec_from : self.pos])
        data = None if self._rec_over else bytes(self._rec)
        self._rec = None
        return data

    def _keep(self, data: bytes) -> None:
        assert self._rec is not None
        if self._rec_over or len(self._rec) + len(data) > self._rec_cap:
            self._rec_over = True
            self._rec.clear()
        else:
            self._rec += data

    def at_eof(self) -> bool:
        return not self._fill(1)

    def peek(self, n: int) -> bytes:
        self._fill(n)
        return self.buf[self.pos : self.pos + n]

    def read_u8(self) -> int:
        """The next byte; Truncated at the end of the stream."""
        if self.pos < len(self.buf) or self._fill(1):
            self.pos += 1
            return self.buf[self.pos - 1]
        raise Truncated(f"stream ended at offset {self.tell()}")

    def read_byte(self) -> int:
        """The next byte, or -1 at the end of the stream."""
        if self.pos < len(self.buf) or self._fill(1):
            b = self.buf[self.pos]
            self.pos += 1
            return b
        return -1

    def read(self, n: int = -1) -> bytes:
        """Up to `n` bytes (fewer only at the end); a file-like `read` for tarfile and friends."""
        if n is None or n < 0:
            n = CHUNK
        self._fill(n)
        data = self.buf[self.pos : self.pos + n]
        self.pos += len(data)
        return data

    def read_exact(self, n: int) -> bytes:
        end = self.pos + n
        if end <= len(self.buf):
            data = self.buf[self.pos : end]
            self.pos = end
            return data
        data = self.read(n)
        if len(data) != n:
            raise Truncated(f"expected {n} bytes at offset {self.tell() - len(data)}, got {len(data)}")
        return data

    def skip(self, n: int) -> None:
        """Discard `n` bytes; Truncated when the stream holds fewer."""
        if self.pos + n <= len(self.buf):
            self.pos += n
            return
        have = min(n, len(self.buf) - self.pos)
        self.pos += have
        n -= have
        while n > 0:
            chunk = self._raw.read(min(n, 1 << 20))
            if not chunk:
                raise Truncated(f"stream ended {n} bytes before the expected end of a data block")
            if self._rec is not None:
                self._keep(self.buf[self._rec_from : self.pos] + chunk)
                self._rec_from = 0
            self.base += self.pos + len(chunk)
            self.buf, self.pos = b"", 0
            n -= len(chunk)

    def readline(self, cap: int) -> bytes | None:
        """Bytes up to and including the next newline; the rest of the stream when it ends without
        one; None (the line consumed) when it is longer than `cap`."""
        searched = self.pos
        while True:
            idx = self.buf.find(b"\n", searched)
            if idx >= 0:
                line = self.buf[self.pos : idx + 1] if idx + 1 - self.pos <= cap else None
                self.pos = idx + 1
                return line
            avail = len(self.buf) - self.pos
            if avail > cap:
                self._discard_line()
                return None
            if not self._fill(avail + 1):
                line = self.buf[self.pos :]
                self.pos = len(self.buf)
                return line
            searched = self.pos + avail

    def _discard_line(self) -> None:
        while True:
            idx = self.buf.find(b"\n", self.pos)
            if idx >= 0:
                self.pos = idx + 1
                return
            self.pos = len(self.buf)
            if not self._fill(1):
                return


class Window:
    """A seekable read-only view of `length` bytes of `f` starting at `start`."""

    def __init__(self, f: IO[bytes], start: int, length: int) -> None:
        self._f = f
        self._start = start
        self._length = length
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        left = self._length - self._pos
        if size is None or size < 0 or size > left:
            size = left
        if size <= 0:
            return b""
        self._f.seek(self._start + self._pos)
        data = self._f.read(size)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def __len__(self) -> int:
        return self._length


Decompressor = Callable[[], object]

# Stream kinds: a factory for one member's decompressor, and the magic that starts another member.
_FACTORIES: dict[str, tuple[Decompressor, bytes | None]] = {
    "gzip": (lambda: zlib.decompressobj(31), b"\x1f\x8b"),
    "zlib": (lambda: zlib.decompressobj(15), None),
    "deflate": (lambda: zlib.decompressobj(-15), None),
    "bz2": (bz2.BZ2Decompressor, b"BZh"),
    "xz": (lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ), b"\xfd7zXZ\x00"),
    "lzma": (lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE), None),
}


def lz4_available() -> bool:
    try:
        import lz4.frame  # noqa: F401
    except ImportError:
        return False
    return True


class Decompressing:
    """Decompressed view of a raw stream, produced in bounded chunks under the scan's caps.

    Concatenated members (gzip, bz2, xz) are followed as their loaders follow them. Corrupt or
    truncated input raises Corrupt; the budget and the compression-ratio cap raise Limit.
    """

    def __init__(
        self,
        raw: RawStream,
        kind: str,
        *,
        budget: Budget,
        max_ratio: float,
        ratio_floor: int,
        filters: list[dict] | None = None,
    ) -> None:
        self._raw = raw
        self.kind = kind
        self._budget = budget
        self._max_ratio = max_ratio
        self._ratio_floor = ratio_floor
        self._filters = filters
        self._dec = self._new()
        self._pending = b""  # compressed input not yet given to the decompressor
        self._raw_eof = False
        self._done = False
        self.consumed = 0
        self.produced = 0

    def _new(self) -> object:
        if self.kind == "lz4":
            import lz4.frame

            return lz4.frame.LZ4FrameDecompressor()
        if self.kind == "zip-lzma":
            return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=self._filters)
        return _FACTORIES[self.kind][0]()

    def _input(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        if self._raw_eof:
            return b""
        data = self._raw.read(CHUNK)
        if not data:
            self._raw_eof = True
        self.consumed += len(data)
        return data

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = CHUNK
        out = b""
        try:
            while not out and not self._done:
                out = self._step(size)
        except (zlib.error, OSError, lzma.LZMAError, EOFError, ValueError, RuntimeError) as exc:
            raise Corrupt(f"{self.kind} stream is corrupt: {exc}") from exc
        self.produced += len(out)
        self._budget.charge(len(out))
        if self.produced > self._ratio_floor and self.produced > self._max_ratio * max(self.consumed, 1):
            raise Limit(
                "compression_ratio",
                f"{self.kind} stream expands {self.produced // max(self.consumed, 1)}:1 "
                f"(limit {self._max_ratio:g}:1)",
            )
        return out

    def _step(self, size: int) -> bytes:
        dec = self._dec
        if getattr(dec, "eof", False):
            return self._next_member()
        tail = getattr(dec, "unconsumed_tail", b"")  # zlib keeps input it had no room to expand
        needs_input = getattr(dec, "needs_input", True) and not tail
        data = self._input() if needs_input else b""
        if needs_input and not data:
            drained = dec.decompress(b"", size) if hasattr(dec, "unconsumed_tail") else b""
            if drained:
                return drained
            if getattr(dec, "eof", False):
                return self._next_member()
            raise Truncated(f"{self.kind} stream is truncated")
        if hasattr(dec, "unconsumed_tail"):
            return dec.decompress(tail + data if tail else data, size)
        return dec.decompress(data, max_length=size)

    def _next_member(self) -> bytes:
        """After one member ends: continue with the next one when its magic follows, else stop."""
        rest = self._dec.unused_data
        magic = _FACTORIES.get(self.kind, (None, None))[1]
        if magic and len(rest) < len(magic):
            more = self._input()
            rest += more
        if magic and rest.startswith(magic):
            self._pending = rest
            self._dec = self._new()
            return b""
        self._done = True
        return b""


class NotRegular(OSError):
    """The path turned out not to be a regular file when opened."""


def open_regular_file(path: str) -> tuple[IO[bytes], os.stat_result]:
    """Open without following a final symlink and without blocking on FIFOs; refuse non-regular files."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    flags |= getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegular(f"{path} is not a regular file")
        return os.fdopen(fd, "rb"), st
    except BaseException:
        os.close(fd)
        raise
