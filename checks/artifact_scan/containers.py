"""Archive members, read the way lenient loaders read them.

Zip members are located through the central directory but read from their local headers by this
module, with no CRC check and whatever the flag bits say, because PyTorch and others load archives
that Python's zipfile refuses. When the central directory itself is unreadable, local headers are
walked from the start. Tar archives are read as a stream. Members that cannot be read are reported
with the reason, never skipped silently.
"""

from __future__ import annotations

import itertools
import lzma
import posixpath
import stat
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from checks.artifact_scan.streams import Budget, Corrupt, Decompressing, Limit, RawStream, Reader, Window

if TYPE_CHECKING:  # zipfile and tarfile are imported when an archive is met (scanner start-up time)
    import tarfile

_LOCAL = struct.Struct("<4s5H3L2H")
_LOCAL_SIG = b"PK\x03\x04"
ZIP_STORED = 0
_METHODS = {8: "deflate", 12: "bz2", 14: "zip-lzma"}  # zip compression methods read here


@dataclass
class Member:
    """One archive entry: a regular file to open, or a link, special file or unreadable entry."""

    name: str
    kind: str  # file | dir | symlink | hardlink | special
    open: Callable[[], RawStream] | None = None
    seekable: Window | None = None  # stored zip members: a view nested zips can seek in
    problem: str | None = None  # why the entry cannot be read (encrypted, unknown method...)
    span: tuple[int, int] | None = None  # zip: where the entry lies in the archive, header to data end
    limit: tuple[str, str] | None = None  # a limit the entry's declared size breaks: (kind, detail)


@dataclass(frozen=True)
class Caps:
    budget: Budget
    max_ratio: float
    ratio_floor: int
    max_members: int


def escapes_root(name: str) -> bool:
    """True for absolute member paths and paths with '..' components (extraction would escape)."""
    norm = name.replace("\\", "/")
    return norm.startswith("/") or (len(norm) > 1 and norm[1] == ":") or ".." in norm.split("/")


# -- zip ------------------------------------------------------------------------------------------


@dataclass
class ZipEntry:
    name: str
    offset: int  # of the local header
    method: int
    flags: int
    csize: int
    mode: int
    usize: int = 0  # declared uncompressed size


def zip_entries(f: IO[bytes], size: int, *, walk: bool = True) -> tuple[list[ZipEntry], str | None]:
    """Entries from the central directory, or from a walk of local headers when it is unreadable
    (then the second value says why; with walk=False, no entries)."""
    import zipfile

    try:
        with zipfile.ZipFile(f) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, struct.error) as exc:
        return (_walk_local_headers(f, size) if walk else []), f"central directory unreadable ({exc})"
    entries = [
        ZipEntry(
            i.filename,
            i.header_offset,
            i.compress_type,
            i.flag_bits,
            i.compress_size,
            i.external_attr >> 16,
            i.file_size,
        )
        for i in infos
    ]
    return entries, None


def _walk_local_headers(f: IO[bytes], size: int) -> list[ZipEntry]:
    entries: list[ZipEntry] = []
    offset = 0
    while offset + _LOCAL.size <= size:
        f.seek(offset)
        raw = f.read(_LOCAL.size)
        if raw[:4] != _LOCAL_SIG:
            break
        _, _, flags, method, _, _, _, csize, usize, nlen, xlen = _LOCAL.unpack(raw)
        name = f.read(nlen).decode("utf-8" if flags & 0x800 else "cp437", "replace")
        if flags & 0x08 and csize == 0:  # sizes only in a trailing data descriptor: cannot delimit
            entries.append(ZipEntry(name, offset, -1, flags, 0, 0))
            break
        entries.append(ZipEntry(name, offset, method, flags, csize, 0, usize))
        offset += _LOCAL.size + nlen + xlen + csize
    return entries


def zip_members(f: IO[bytes], size: int, caps: Caps, *, appended: bool = False) -> Iterator[Member]:
    """Members of the zip in `f` (seekable, `size` bytes), in directory order; archive-level
    problems (unreadable directory, overlapping entries) come as Members of kind 'archive'.
    `appended`: the zip may only be trailing data of another format; yield nothing unless its
    directory reads cleanly."""
    entries, problem = zip_entries(f, size, walk=not appended)
    if problem and not appended:
        yield Member("", "archive", problem=problem)
    spans: list[tuple[int, int, str]] = []
    for entry in entries[: caps.max_members]:
        member = _zip_member(f, size, entry, caps)
        member.limit = _declared_limit(entry, caps)
        if member.span:
            spans.append((*member.span, member.name))
        yield member
    spans.sort()
    for (_, prev_end, prev), (start, _, name) in itertools.pairwise(spans):
        if start < prev_end:
            yield Member(name, "archive", problem=f"entry overlaps {prev!r} (a zip bomb technique)")
    if len(entries) > caps.max_members:
        raise Limit("members", f"zip has {len(entries)} entries (limit {caps.max_members})")


def _declared_limit(e: ZipEntry, caps: Caps) -> tuple[str, str] | None:
    """What the entry's declared sizes say before anything is decompressed (a loader trusts them)."""
    if e.usize > caps.budget.limit:
        return ("total_bytes", f"entry declares {e.usize} bytes (limit {caps.budget.limit})")
    if e.usize > caps.ratio_floor and e.usize > caps.max_ratio * max(e.csize, 1):
        return ("compression_ratio", f"entry declares {e.usize // max(e.csize, 1)}:1 compression")
    return None


def _zip_member(f: IO[bytes], size: int, e: ZipEntry, caps: Caps) -> Member:
    if e.name.endswith("/"):
        return Member(e.name, "dir")
    if stat.S_ISLNK(e.mode):
        return Member(e.name, "symlink")
    if e.flags & 0x41:
        return Member(e.name, "file", problem="encrypted entry cannot be scanned")
    if e.method == -1:
        return Member(e.name, "file", problem="entry size unknown without the central directory")
    f.seek(e.offset)
    raw = f.read(_LOCAL.size)
    if len(raw) < _LOCAL.size or raw[:4] != _LOCAL_SIG:
        return Member(e.name, "file", problem="local header missing or damaged")
    nlen, xlen = _LOCAL.unpack(raw)[-2:]
    start = e.offset + _LOCAL.size + nlen + xlen
    if start + e.csize > size:
        return Member(e.name, "file", problem="entry data runs past the end of the archive")
    span = (e.offset, start + e.csize)
    if e.method == ZIP_STORED:
        return Member(
            e.name,
            "file",
            open=lambda: Window(f, start, e.csize),
            seekable=Window(f, start, e.csize),
            span=span,
        )
    kind = _METHODS.get(e.method)
    if kind is None:
        return Member(e.name, "file", problem=f"compression method {e.method} is not supported")

    def open_member() -> RawStream:
        window = Window(f, start, e.csize)
        filters = _zip_lzma_filters(window) if kind == "zip-lzma" else None
        return Decompressing(
            window,
            kind,
            budget=caps.budget,
            max_ratio=caps.max_ratio,
            ratio_floor=caps.ratio_floor,
            filters=filters,
        )

    return Member(e.name, "file", open=open_member, span=span)


def _zip_lzma_filters(window: Window) -> list[dict]:
    """Zip's LZMA entries start with a version, a properties length and LZMA1 properties."""
    head = window.read(4)
    if len(head) < 4:
        raise Corrupt("LZMA entry header truncated")
    props = window.read(int.from_bytes(head[2:4], "little"))
    if len(props) != 5:
        raise Corrupt("LZMA entry properties malformed")
    d = props[0]
    lc, lp, pb = d % 9, (d // 9) % 5, d // 45
    return [
        {
            "id": lzma.FILTER_LZMA1,
            "lc": lc,
            "lp": lp,
            "pb": pb,
            "dict_size": int.from_bytes(props[1:], "little"),
        }
    ]


# -- tar ------------------------------------------------------------------------------------------


def tar_members(stream: Reader, caps: Caps) -> Iterator[Member]:
    """Members of a tar read as a stream; each file member must be consumed before the next."""
    import tarfile

    try:
        archive = tarfile.open(fileobj=stream, mode="r|")  # noqa: SIM115 - iterated below
        for count, info in enumerate(archive, start=1):
            if count > caps.max_members:
                raise Limit("members", f"tar has more than {caps.max_members} entries")
            yield _tar_member(archive, info)
            archive.members.clear()  # stream mode keeps every header otherwise
    except (tarfile.TarError, EOFError, UnicodeDecodeError) as exc:
        raise Corrupt(f"tar archive unreadable: {exc}") from exc


def _tar_member(archive: tarfile.TarFile, info: tarfile.TarInfo) -> Member:
    if info.isdir():
        return Member(info.name, "dir")
    if info.issym() or info.islnk():
        kind = "symlink" if info.issym() else "hardlink"
        return Member(info.name, kind, problem=f"links to {posixpath.normpath(info.linkname)!r}")
    if not info.isreg():
        return Member(info.name, "special", problem=f"tar entry of type {info.type!r}")
    return Member(info.name, "file", open=lambda: archive.extractfile(info))
