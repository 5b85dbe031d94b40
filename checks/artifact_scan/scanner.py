"""The scan: walk files without following links, detect each stream's format by content, descend
into compression layers and archives under the policy's limits, and analyse every pickle found."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO, Any

from checks.artifact_scan import containers, pickle_vm, skops_schema, sniff
from checks.artifact_scan.mlmodel import inspect_mlmodel
from checks.artifact_scan.policy import ScanPolicy
from checks.artifact_scan.report import Hit, Location, issue_hit, problem_hit, ref_hit, to_findings, type_hit
from checks.artifact_scan.rules import classify, classify_name
from checks.artifact_scan.streams import (
    Budget,
    Corrupt,
    Decompressing,
    Limit,
    NotRegular,
    RawStream,
    Reader,
    Window,
    lz4_available,
    open_regular_file,
)
from checks.findings import Finding, Severity

# Names whose loaders unpickle them (numpy.load falls back to pickle for non-NumPy content).
PICKLE_SUFFIXES = (
    ".pkl",
    ".pickle",
    ".joblib",
    ".jbl",
    ".pt",
    ".pth",
    ".ckpt",
    ".sav",
    ".dill",
    ".npy",
    ".npz",
)
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".lzma", ".z", ".lz4", ".zst")
MLMODEL_MAX_BYTES = 10 * 1024**2
SKOPS_SCHEMA_MAX_BYTES = 64 * 1024**2
NPY_HEADER_MAX = 1 << 20


def expected_format(name: str) -> str | None:
    """'pickle' when the name says a loader will unpickle it; never used to clear content."""
    lower = name.lower()
    while lower.endswith(COMPRESSED_SUFFIXES):
        lower = lower.rsplit(".", 1)[0]
    if lower.endswith(".skops"):
        return "skops"
    return "pickle" if lower.endswith(PICKLE_SUFFIXES) else None


class Scan:
    """One scan: its policy, its decompression budget and what it has seen so far."""

    def __init__(self, policy: ScanPolicy) -> None:
        self.policy = policy
        self.budget = Budget(policy.max_total_bytes)
        self.caps = containers.Caps(
            self.budget, policy.max_compression_ratio, policy.ratio_floor_bytes, policy.max_members
        )
        self.hits: list[Hit] = []

    def findings(self, subject_identity: str, subject: dict | None) -> list[Finding]:
        return to_findings(self.hits, subject_identity=subject_identity, subject=subject)

    # -- filesystem ---------------------------------------------------------------------------------

    def path(self, root: Path) -> None:
        """Scan a file or a directory tree; links and special files are reported, never followed."""
        st = os.lstat(root)  # a missing root raises FileNotFoundError for the caller
        if stat.S_ISDIR(st.st_mode):
            files = self._walk(root)
            expected = self._mlmodels(root, files)
            for path in files:
                self.file(path, expected.get(path) or expected_format(path.name))
        else:
            self._entry(root, st, None)

    def _walk(self, root: Path) -> list[Path]:
        files: list[Path] = []
        pending = [root]
        seen = 0
        while pending:
            directory = pending.pop()
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError as exc:
                self.hits.append(
                    problem_hit(
                        "unreadable",
                        f"Directory cannot be listed: {exc}",
                        Location(str(directory), None, "directory"),
                    )
                )
                continue
            for entry in entries:
                seen += 1
                if seen > self.policy.max_members:
                    self.hits.append(
                        problem_hit(
                            "limit:members",
                            f"More than {self.policy.max_members} entries in the artifact",
                            Location(str(root), None, "directory"),
                        )
                    )
                    return sorted(files)
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    loc = Location(entry.path, None, "file")
                    self.hits.append(problem_hit("unreadable", f"Entry cannot be inspected: {exc}", loc))
                    continue
                if stat.S_ISDIR(st.st_mode):
                    pending.append(Path(entry.path))
                elif stat.S_ISREG(st.st_mode):
                    files.append(Path(entry.path))
                else:
                    self._entry(Path(entry.path), st, None)
        return sorted(files)

    def _entry(self, path: Path, st: os.stat_result, expect: str | None) -> None:
        loc = Location(str(path), None, "file")
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(path)
            self.hits.append(
                problem_hit("symlink", f"Symbolic link in the artifact (to {target!r})", loc, target=target)
            )
        elif not stat.S_ISREG(st.st_mode):
            self.hits.append(
                problem_hit("special_file", f"Special file in the artifact ({_file_type(st.st_mode)})", loc)
            )
        else:
            self.file(path, expect or expected_format(path.name))

    def _mlmodels(self, root: Path, files: list[Path]) -> dict[Path, str]:
        expected: dict[Path, str] = {}
        present = set(files)
        for path in files:
            if path.name != "MLmodel":
                continue
            loc = Location(str(path), None, "mlmodel")
            try:
                f, _ = open_regular_file(str(path))
                with f:
                    text = f.read(MLMODEL_MAX_BYTES + 1)
            except OSError as exc:
                self.hits.append(problem_hit("unreadable", f"MLmodel cannot be read: {exc}", loc))
                continue
            if len(text) > MLMODEL_MAX_BYTES:
                self.hits.append(problem_hit("limit:mlmodel_size", "MLmodel file is too large to parse", loc))
                continue
            facts = inspect_mlmodel(text, self.policy.allow)
            for c in facts.concerns:
                self.hits.append(
                    Hit(f"{c.key}|", c.severity, c.title, c.remediation, loc, [], c.evidence, c.runs_code)
                )
            for rel, fmt in facts.expected.items():
                target = path.parent / rel
                if containers.escapes_root(rel):
                    self.hits.append(
                        problem_hit("mlmodel:path_escape", f"MLmodel points outside the model: {rel!r}", loc)
                    )
                elif target not in present and not os.path.lexists(target):
                    self.hits.append(
                        problem_hit(
                            "model_file_missing",
                            f"Model file {rel!r} named in MLmodel is missing",
                            loc,
                            pickled_model=rel,
                        )
                    )
                expected[target] = fmt
        return expected

    def file(self, path: Path, expect: str | None) -> None:
        loc = Location(str(path), None, "file")
        try:
            f, st = open_regular_file(str(path))
        except NotRegular:
            self.hits.append(
                problem_hit("special_file", "Entry changed into a special file while scanned", loc)
            )
            return
        except OSError as exc:
            self.hits.append(problem_hit("unreadable", f"File cannot be read: {exc.strerror or exc}", loc))
            return
        with f:
            if st.st_size > self.policy.max_file_bytes:
                self.hits.append(
                    problem_hit(
                        "limit:file_size",
                        f"File is {st.st_size} bytes (limit {self.policy.max_file_bytes})",
                        loc,
                        size=st.st_size,
                    )
                )
                return
            self.stream(f, Location(str(path), None, ""), depth=0, expect=expect, seekable=f, size=st.st_size)

    # -- content ----------------------------------------------------------------------------------

    def stream(
        self,
        raw: RawStream,
        loc: Location,
        *,
        depth: int,
        expect: str | None,
        seekable: IO[bytes] | Window | None = None,
        size: int | None = None,
    ) -> None:
        """Detect the format of `raw` and scan it; corrupt content and limits become findings."""
        reader = Reader(raw)
        here = loc
        try:
            kind = sniff.sniff(reader.peek(sniff.HEAD))
            label = "pickle" if kind == "maybe_pickle" else kind
            here = Location(loc.file, loc.member, f"{loc.format}>{label}" if loc.format else label)
            if depth > self.policy.max_depth and (kind in sniff.COMPRESSIONS or kind in ("zip", "tar")):
                self.hits.append(
                    problem_hit("limit:depth", f"Nested more than {self.policy.max_depth} levels deep", here)
                )
                return
            if kind in sniff.COMPRESSIONS:
                self._decompress(reader, kind, here, depth, expect)
            elif kind == "zip":
                self._zip(reader, seekable, size, here, depth)
            elif kind == "tar":
                self._tar(reader, here, depth)
            elif kind == "npy":
                self._npy(reader, here)
            else:
                self._pickle_or_data(reader, kind, here, expect)
                if seekable is not None and size and _has_zip_directory(seekable, size):
                    zip_loc = Location(loc.file, loc.member, f"{here.format}+zip")
                    self._zip(reader, seekable, size, zip_loc, depth, appended=True)
        except Limit as exc:
            self.hits.append(problem_hit(f"limit:{exc.kind}", str(exc), here))
        except Corrupt as exc:
            self.hits.append(problem_hit("corrupt", f"Content cannot be decoded: {exc}", here))

    def _decompress(self, reader: Reader, kind: str, loc: Location, depth: int, expect: str | None) -> None:
        if kind == "zstd" or (kind == "lz4" and not lz4_available()):
            self.hits.append(
                problem_hit("unsupported_compression", f"{kind} content cannot be decompressed here", loc)
            )
            return
        if kind == "zfile":
            reader.skip(2 + 19)
            kind = "zlib"
        inner = Decompressing(
            reader,
            kind,
            budget=self.budget,
            max_ratio=self.policy.max_compression_ratio,
            ratio_floor=self.policy.ratio_floor_bytes,
        )
        self.stream(inner, loc, depth=depth + 1, expect=expect)

    def _pickle_or_data(self, reader: Reader, kind: str, loc: Location, expect: str | None) -> None:
        committed = kind == "pickle" or expect == "pickle"
        is_pickle = (kind != "data" or committed) and self._pickle(reader, loc, committed)
        if expect == "skops" and not is_pickle:
            self.hits.append(
                problem_hit("not_skops", "Model file named as skops is not a skops archive", loc)
            )

    def _pickle(self, reader: Reader, loc: Location, committed: bool) -> bool:
        """Analyse the pickles at the reader; True when the content was taken for a pickle."""
        allow = self.policy.allow
        analysis = pickle_vm.analyse(
            reader,
            committed=committed,
            denied=lambda ref: classify(ref.module, ref.name, allow).status == "deny",
        )
        is_pickle = bool(analysis.pickles or committed or analysis.error)
        if not is_pickle:  # a probe that found only denied names on the way: label the bytes as data
            loc = Location(loc.file, loc.member, loc.format.rpartition("pickle")[0] + "data")
        for ref in analysis.refs.values():
            hit = ref_hit(ref, classify(ref.module, ref.name, allow), loc)
            if hit:
                self.hits.append(hit)
        for issue in analysis.issues:
            producer = classify_name(issue.name, allow) if issue.name else None
            self.hits.append(issue_hit(issue, loc, producer))
        if analysis.error is not None:
            self.hits.append(
                problem_hit(
                    "unparseable_pickle",
                    f"Pickle cannot be fully parsed: {analysis.error.message}",
                    loc,
                    offset=analysis.error.offset,
                )
            )
        if isinstance(analysis.stream_error, (Limit, Corrupt)):
            raise analysis.stream_error
        return is_pickle

    def _npy(self, reader: Reader, loc: Location) -> None:
        """A .npy header; object arrays are followed by a pickle of the array."""
        head = reader.read_exact(8)
        major = head[6]
        width = 2 if major == 1 else 4
        length = int.from_bytes(reader.read_exact(width), "little")
        if major not in (1, 2, 3) or length > NPY_HEADER_MAX:
            self.hits.append(
                problem_hit(
                    "unparseable_npy", f"NumPy header version {major} / length {length} not readable", loc
                )
            )
            return
        text = reader.read_exact(length).decode("utf-8" if major == 3 else "latin-1", "replace")
        import ast

        try:
            header = ast.literal_eval(text)
            descr = header["descr"]
        except (ValueError, SyntaxError, TypeError, KeyError, RecursionError, MemoryError) as exc:
            self.hits.append(
                problem_hit("unparseable_npy", f"NumPy header cannot be read: {type(exc).__name__}", loc)
            )
            return
        if _has_object(descr):
            self._pickle(reader, Location(loc.file, loc.member, f"{loc.format}>pickle"), committed=True)

    def _zip(
        self,
        reader: Reader,
        seekable: IO[bytes] | Window | None,
        size: int | None,
        loc: Location,
        depth: int,
        *,
        appended: bool = False,
    ) -> None:
        if seekable is None or size is None:
            import tempfile

            with tempfile.SpooledTemporaryFile(max_size=64 * 1024**2) as spool:
                size = self._spool(reader, spool)
                self._zip(reader, spool, size, loc, depth, appended=appended)  # type: ignore[arg-type]
            return
        members: list[containers.Member] = []
        try:
            for member in containers.zip_members(seekable, size, self.caps, appended=appended):  # type: ignore[arg-type]
                members.append(member)
        except Limit as exc:
            self.hits.append(problem_hit(f"limit:{exc.kind}", str(exc), loc))
        if any(m.name == "schema.json" for m in members):
            self._skops(members, loc)
        for member in members:
            self._member(member, loc, depth)

    def _spool(self, reader: Reader, spool: IO[bytes]) -> int:
        """Copy a non-seekable stream into a temporary file (within the file size limit)."""
        total = 0
        while chunk := reader.read(1 << 20):
            total += len(chunk)
            if total > self.policy.max_file_bytes:
                raise Limit("file_size", f"nested archive larger than {self.policy.max_file_bytes} bytes")
            spool.write(chunk)
        spool.seek(0)
        return total

    def _tar(self, reader: Reader, loc: Location, depth: int) -> None:
        for member in containers.tar_members(reader, self.caps):
            self._member(member, loc, depth)

    def _member(self, member: containers.Member, loc: Location, depth: int) -> None:
        here = loc.child(member.name or None)
        if member.kind == "archive":
            self.hits.append(problem_hit("archive_damaged", f"Archive problem: {member.problem}", here))
            return
        if member.name and containers.escapes_root(member.name):
            self.hits.append(
                problem_hit(
                    "path_escape",
                    f"Member path {member.name!r} escapes the archive",
                    here,
                    severity=Severity.MEDIUM,
                )
            )
        if member.limit:
            self.hits.append(problem_hit(f"limit:{member.limit[0]}", member.limit[1], here))
        if member.kind == "dir":
            return
        if member.kind in ("symlink", "hardlink"):
            severity = (
                Severity.HIGH if member.problem else Severity.MEDIUM
            )  # tar links are followed on extraction
            detail = f" {member.problem}" if member.problem else ""
            self.hits.append(
                problem_hit(member.kind, f"Archive {member.kind}{detail}", here, severity=severity)
            )
            return
        if member.kind == "special":
            self.hits.append(problem_hit("special_file", f"Special file in archive: {member.problem}", here))
            return
        if member.problem or member.open is None:
            self.hits.append(
                problem_hit("unreadable_member", f"Archive member cannot be scanned: {member.problem}", here)
            )
            return
        try:
            raw = member.open()
        except (Corrupt, OSError) as exc:
            self.hits.append(
                problem_hit("unreadable_member", f"Archive member cannot be opened: {exc}", here)
            )
            return
        size = len(member.seekable) if member.seekable is not None else None
        self.stream(
            raw,
            Location(loc.file, here.member, f"{loc.format}"),
            depth=depth + 1,
            expect=expected_format(member.name),
            seekable=member.seekable,
            size=size,
        )

    def _skops(self, members: list[containers.Member], loc: Location) -> None:
        schema_member = next(m for m in members if m.name == "schema.json")
        here = Location(loc.file, loc.member, f"{loc.format}>skops")
        if schema_member.open is None:
            self.hits.append(problem_hit("unparseable_skops", "skops schema cannot be read", here))
            return
        import json

        try:
            data = Reader(schema_member.open()).read(SKOPS_SCHEMA_MAX_BYTES + 1)
            if len(data) > SKOPS_SCHEMA_MAX_BYTES:
                raise Limit("skops_schema_size", "skops schema.json is too large to check")
            types = skops_schema.schema_types(json.loads(data))
        except Limit as exc:
            self.hits.append(problem_hit(f"limit:{exc.kind}", str(exc), here))
            return
        except (Corrupt, ValueError, RecursionError) as exc:
            self.hits.append(problem_hit("unparseable_skops", f"skops schema cannot be read: {exc}", here))
            return
        for t in types:
            hit = type_hit(t.name, t.constructed, classify_name(t.name, self.policy.allow), here)
            if hit:
                self.hits.append(hit)


def _has_object(descr: Any) -> bool:
    """True when a .npy dtype description contains Python objects."""
    if isinstance(descr, str):
        return descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, (list, tuple)):
        return any(_has_object(part) for part in descr)
    return False


def _has_zip_directory(f: IO[bytes] | Window, size: int) -> bool:
    """True when the end of a non-zip stream holds a zip directory (a polyglot zip loaders accept)."""
    tail = min(size, 65_557)
    f.seek(size - tail)
    data = f.read(tail)
    return b"PK\x05\x06" in data


def _file_type(mode: int) -> str:
    for test, label in (
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return label
    return "not a regular file"
