"""The local OSV advisory database: open, query and update.

A database is a directory holding `metadata.json` (source, fetch time, snapshot time, counts) that
names a zip of OSV JSON records and a package index beside it. `update` replaces all three
atomically from a URL or a local zip/directory; opening reads the index and parses only the records
of packages that are queried. `open_database` also accepts a bare zip or a directory of records
(the bundled sample), indexing it once in memory. Only `update` touches the network.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import re
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from checks.findings import Severity

SAMPLE_DATABASE = Path(__file__).parent / "data" / "osv-sample"
METADATA = "metadata.json"
ECOSYSTEM = "PyPI"
DEFAULT_SEVERITY = Severity.HIGH  # an advisory whose record carries no usable severity
MAX_RECORD_BYTES = 4 * 1024 * 1024
MAX_RECORDS = 2_000_000
MAX_DOWNLOAD_BYTES = 2 * 1024**3
CHUNK = 1024 * 1024
KEEP_SNAPSHOTS = 2  # current and previous, so a reader racing an update still finds its zip


# What reading a damaged zip or record can raise (CRC or deflate errors, truncation, bad JSON).
_READ_ERRORS = (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, zlib.error)


class DatabaseUnavailable(Exception):
    """The database is missing (`missing` true) or cannot be read."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


class UpdateError(Exception):
    """An update was refused; the previous database is left as it was."""


def normalize(name: str) -> str:
    """PEP 503 normalised package name."""
    return canonicalize_name(name)


_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")


def redact_url(text: str) -> str:
    """The text with the user-info of every URL in it masked (tokens never reach evidence or metadata)."""
    return _USERINFO.sub(r"\1***@", text)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


@dataclass(frozen=True)
class DatabaseInfo:
    """What `metadata.json` says about a database (or what opening a bare snapshot found)."""

    source: str
    fetched_at: datetime | None
    snapshot_at: datetime | None  # newest `modified` among the records: the data's real age
    records: int
    packages: int
    sample: bool = False
    sha256: str | None = None

    def age_days(self, now: datetime | None = None) -> float | None:
        """Days since the snapshot (since the fetch when the records carry no dates)."""
        at = self.snapshot_at or self.fetched_at
        if at is None:
            return None
        return ((now or datetime.now(UTC)) - at).total_seconds() / 86400

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "fetched_at": _iso(self.fetched_at),
            "snapshot_at": _iso(self.snapshot_at),
            "records": self.records,
            "packages": self.packages,
            "sample": self.sample,
            "sha256": self.sha256,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatabaseInfo:
        return cls(
            source=str(data.get("source", "")),
            fetched_at=_parse_time(data.get("fetched_at")),
            snapshot_at=_parse_time(data.get("snapshot_at")),
            records=int(data.get("records", 0)),
            packages=int(data.get("packages", 0)),
            sample=bool(data.get("sample", False)),
            sha256=data.get("sha256"),
        )


@dataclass(frozen=True)
class Advisory:
    """One advisory that affects one package version."""

    id: str
    package: str
    version: str
    aliases: tuple[str, ...]
    summary: str
    severity: Severity
    severity_source: str  # e.g. "database_specific:MODERATE", "CVSS_V3:7.5", "default"
    fixed: tuple[str, ...]  # every fixed version the record lists for the package, ascending
    references: tuple[str, ...] = field(default=())

    @property
    def next_fixed(self) -> str | None:
        """The lowest fixed version above the affected one, if any."""
        current = _version(self.version)
        for fix in self.fixed:
            fixed = _version(fix)
            if current is None or fixed is None or fixed > current:
                return fix
        return None


# --- version ranges ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=65536)
def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except (InvalidVersion, TypeError):
        return None


def version_key(text: str) -> tuple[bool, Version, str]:
    """Sort key for version strings: PEP 440 order, unparseable ones first (by text)."""
    parsed = _version(text)
    return (parsed is not None, parsed or Version("0"), text)


def _items(value: Any) -> list[Any]:
    """A record's list field, or [] when the record holds something else there."""
    return value if isinstance(value, list) else []


def _in_range(version: Version, events: list[Any]) -> bool | None:
    """OSV ECOSYSTEM range semantics; None when an event cannot be evaluated."""
    ordered: list[tuple[Version | None, str]] = []
    for event in events:
        if not isinstance(event, dict):
            return None
        for kind in ("introduced", "fixed", "last_affected"):  # `limit` only applies to GIT ranges
            if kind not in event:
                continue
            if kind == "introduced" and event[kind] == "0":
                ordered.append((None, kind))
                continue
            parsed = _version(event[kind]) if isinstance(event[kind], str) else None
            if parsed is None:
                return None
            ordered.append((parsed, kind))
    ordered.sort(key=lambda item: (item[0] is not None, item[0] or Version("0")))
    affected = False
    for at, kind in ordered:
        if kind == "introduced":
            affected = affected or at is None or version >= at
        elif at is not None and (version >= at if kind == "fixed" else version > at):
            affected = False
    return affected


def _listed(version: str, listed: list[Any]) -> bool:
    """Whether an explicit `versions` list names the version (local labels such as +cpu ignored)."""
    parsed = _version(version)
    public = _version(parsed.public) if parsed is not None else None
    for item in listed:
        if not isinstance(item, str):
            continue
        if item == version:
            return True
        other = _version(item) if public is not None else None
        if other is not None and other == public:
            return True
    return False


def _entries(record: dict[str, Any], package: str) -> list[dict[str, Any]]:
    found = []
    for entry in _items(record.get("affected")):
        pkg = entry.get("package") if isinstance(entry, dict) else None
        if (
            isinstance(pkg, dict)
            and pkg.get("ecosystem") == ECOSYSTEM
            and normalize(str(pkg.get("name", ""))) == package
        ):
            found.append(entry)
    return found


def affects(record: dict[str, Any], package: str, version: str) -> bool:
    """Whether an OSV record says `package==version` is affected (withdrawn records never are).

    A version is affected when an ECOSYSTEM (or SEMVER) range contains it or the explicit
    `versions` list names it; GIT ranges (commit hashes) are skipped.
    """
    if record.get("withdrawn"):
        return False
    package = normalize(package)
    parsed = _version(version)
    for entry in _entries(record, package):
        if parsed is not None:
            for rng in _items(entry.get("ranges")):
                if not isinstance(rng, dict) or rng.get("type") not in ("ECOSYSTEM", "SEMVER"):
                    continue  # GIT ranges name commits, not releases
                if _in_range(parsed, _items(rng.get("events"))):
                    return True
        if _listed(version, _items(entry.get("versions"))):
            return True
    return False


def fixed_versions(record: dict[str, Any], package: str) -> tuple[str, ...]:
    """Every `fixed` event of the package's ECOSYSTEM ranges, in version order."""
    fixes = {
        event["fixed"]
        for entry in _entries(record, normalize(package))
        for rng in _items(entry.get("ranges"))
        if isinstance(rng, dict) and rng.get("type") in ("ECOSYSTEM", "SEMVER")
        for event in _items(rng.get("events"))
        if isinstance(event, dict) and isinstance(event.get("fixed"), str)
    }
    return tuple(sorted(fixes, key=version_key))


# --- severity ------------------------------------------------------------------------------------

_LABELS = {
    "CRITICAL": Severity.CRITICAL,
    "HIGH": Severity.HIGH,
    "MODERATE": Severity.MEDIUM,
    "MEDIUM": Severity.MEDIUM,
    "LOW": Severity.LOW,
}
_CVSS3 = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
_CVSS3_PR = {"U": {"N": 0.85, "L": 0.62, "H": 0.27}, "C": {"N": 0.85, "L": 0.68, "H": 0.5}}


def _roundup(value: float) -> float:
    scaled = round(value * 100_000)
    return scaled / 100_000 if scaled % 10_000 == 0 else (math.floor(scaled / 10_000) + 1) / 10


def cvss3_base_score(vector: str) -> float | None:
    """CVSS v3.0/v3.1 base score of a vector string, or None when it is not a valid v3 vector."""
    parts = vector.strip().split("/")
    if not parts or not re.fullmatch(r"CVSS:3\.[01]", parts[0]):
        return None
    metrics = dict(p.split(":", 1) for p in parts[1:] if ":" in p)
    try:
        scope = metrics["S"]
        av, ac, ui = (_CVSS3[k][metrics[k]] for k in ("AV", "AC", "UI"))
        pr = _CVSS3_PR[scope][metrics["PR"]]
        c, i, a = (_CVSS3[k][metrics[k]] for k in ("C", "I", "A"))
    except KeyError:
        return None
    iss = 1 - (1 - c) * (1 - i) * (1 - a)
    impact = 6.42 * iss if scope == "U" else 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15
    if impact <= 0:
        return 0.0
    exploitability = 8.22 * av * ac * pr * ui
    total = impact + exploitability if scope == "U" else 1.08 * (impact + exploitability)
    return _roundup(min(total, 10.0))


def _from_score(score: float) -> Severity:
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    return Severity.LOW


def record_severity(record: dict[str, Any], package: str | None = None) -> tuple[Severity, str]:
    """Severity of an advisory and where it came from.

    `database_specific.severity` (record or affected entry; GHSA's CRITICAL/HIGH/MODERATE/LOW)
    wins; else the highest CVSS v3 base score (or numeric score) in `severity`; else HIGH.
    """
    holders = [record] + (_entries(record, normalize(package)) if package else [])
    for holder in holders:
        for key in ("database_specific", "ecosystem_specific"):
            label = (holder.get(key) or {}).get("severity") if isinstance(holder.get(key), dict) else None
            if isinstance(label, str) and label.strip().upper() in _LABELS:
                return _LABELS[label.strip().upper()], f"{key}:{label.strip().upper()}"
    best: tuple[float, str] | None = None
    for item in _items(record.get("severity")):
        if not isinstance(item, dict) or not isinstance(item.get("score"), str):
            continue
        score = cvss3_base_score(item["score"])
        if score is None:
            with contextlib.suppress(ValueError):
                score = float(item["score"])
        if score is not None and math.isfinite(score) and (best is None or score > best[0]):
            best = (score, f"{item.get('type', 'score')}:{score:.1f}")
    if best is not None:
        return _from_score(best[0]), best[1]
    return DEFAULT_SEVERITY, "default"


def to_advisory(record: dict[str, Any], package: str, version: str) -> Advisory:
    """The Advisory a record describes for one affected package version."""
    severity, source = record_severity(record, package)
    text = record.get("summary") or record.get("details")
    summary = text.strip().split("\n", 1)[0] if isinstance(text, str) else ""
    if len(summary) > 240:
        summary = summary[:237] + "..."
    refs = tuple(
        r["url"]
        for r in _items(record.get("references"))
        if isinstance(r, dict) and r.get("type") in ("ADVISORY", "WEB") and isinstance(r.get("url"), str)
    )[:3]
    return Advisory(
        id=str(record["id"]),
        package=normalize(package),
        version=version,
        aliases=tuple(a for a in _items(record.get("aliases")) if isinstance(a, str)),
        summary=summary,
        severity=severity,
        severity_source=source,
        fixed=fixed_versions(record, package),
        references=refs,
    )


# --- reading snapshots ---------------------------------------------------------------------------


class _Records:
    """Named OSV JSON documents in a zip or a directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip = None if path.is_dir() else zipfile.ZipFile(path)  # a missing file raises
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        if self._zip is not None:
            return [
                i.filename for i in self._zip.infolist() if i.filename.endswith(".json") and not i.is_dir()
            ]
        return sorted(p.name for p in self.path.glob("*.json") if p.name != METADATA and p.is_file())

    def read(self, name: str) -> dict[str, Any]:
        if self._zip is not None:
            with self._lock:
                info = self._zip.getinfo(name)
                if info.file_size > MAX_RECORD_BYTES:
                    raise ValueError(f"{name}: record larger than {MAX_RECORD_BYTES} bytes")
                raw = self._zip.read(info)
        else:
            file = self.path / name
            if file.stat().st_size > MAX_RECORD_BYTES:
                raise ValueError(f"{name}: record larger than {MAX_RECORD_BYTES} bytes")
            raw = file.read_bytes()
        record = json.loads(raw)
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            raise ValueError(f"{name}: not an OSV record (no string `id`)")
        if not isinstance(record.get("affected", []), list):
            raise ValueError(f"{name}: `affected` is not a list")
        return record

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


@dataclass
class _Scan:
    index: dict[str, list[str]]
    records: int
    latest: datetime | None


def _scan(source: _Records) -> _Scan:
    """Parse every record once: the package index (PyPI names) and the newest `modified`."""
    names = source.names()
    if len(names) > MAX_RECORDS:
        raise ValueError(f"more than {MAX_RECORDS} records")
    index: dict[str, list[str]] = {}
    latest = None
    for name in names:
        record = source.read(name)
        modified = _parse_time(record.get("modified"))
        if modified and (latest is None or modified > latest):
            latest = modified
        for entry in record["affected"] if isinstance(record.get("affected"), list) else []:
            pkg = entry.get("package") if isinstance(entry, dict) else None
            if (
                isinstance(pkg, dict)
                and pkg.get("ecosystem") == ECOSYSTEM
                and isinstance(pkg.get("name"), str)
            ):
                bucket = index.setdefault(normalize(pkg["name"]), [])
                if not bucket or bucket[-1] != name:
                    bucket.append(name)
    return _Scan(index, len(names), latest)


class AdvisoryDatabase:
    """Read-only view of one snapshot; records are parsed per package, on first query."""

    def __init__(self, records: _Records, index: dict[str, list[str]], info: DatabaseInfo) -> None:
        self._records = records
        self._index = index
        self._cache: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.info = info

    @property
    def packages(self) -> frozenset[str]:
        """Normalised names of every package with at least one record."""
        return frozenset(self._index)

    @property
    def loaded(self) -> frozenset[str]:
        """Packages whose records have been parsed so far."""
        return frozenset(self._cache)

    def records(self, package: str) -> list[dict[str, Any]]:
        """The package's records (withdrawn ones included)."""
        package = normalize(package)
        with self._lock:
            if package not in self._cache:
                try:
                    self._cache[package] = [self._records.read(n) for n in self._index.get(package, [])]
                except _READ_ERRORS as exc:
                    raise DatabaseUnavailable(f"advisory database {self._records.path}: {exc}") from exc
            return self._cache[package]

    def query(self, package: str, version: str) -> list[Advisory]:
        """Advisories affecting `package==version`, by id."""
        hits = [r for r in self.records(package) if affects(r, package, version)]
        return sorted((to_advisory(r, package, version) for r in hits), key=lambda a: a.id)

    def close(self) -> None:
        self._records.close()

    def __enter__(self) -> AdvisoryDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return data


def open_database(path: Path) -> AdvisoryDatabase:
    """Open a database directory (as `update` writes it), a bare OSV zip or a directory of records.

    Raises DatabaseUnavailable (with `missing` set when there is nothing at `path`).
    """
    path = Path(path)
    try:
        if not path.exists():
            raise DatabaseUnavailable(f"no advisory database at {path}", missing=True)
        meta = _read_json(path / METADATA) if (path / METADATA).is_file() else {}
        if "database" in meta:
            return _open_installed(path, meta)
        records = _Records(path)
        scan = _scan(records)
        if not scan.records:
            raise DatabaseUnavailable(f"no OSV records in {path}", missing=True)
        info = DatabaseInfo(
            source=str(meta.get("source") or path),
            fetched_at=_parse_time(meta.get("fetched_at"))
            or datetime.fromtimestamp(path.stat().st_mtime, UTC),
            snapshot_at=_parse_time(meta.get("snapshot_at")) or scan.latest,
            records=scan.records,
            packages=len(scan.index),
            sample=bool(meta.get("sample", False)),
        )
        return AdvisoryDatabase(records, scan.index, info)
    except DatabaseUnavailable:
        raise
    except _READ_ERRORS as exc:
        raise DatabaseUnavailable(f"advisory database {path} is unreadable: {exc}") from exc


def _open_installed(path: Path, meta: dict[str, Any]) -> AdvisoryDatabase:
    for attempt in range(2):  # an update may have swapped the snapshot between reads
        zip_path = path / str(meta["database"])
        try:
            records = _Records(zip_path)
            break
        except FileNotFoundError:
            if attempt:
                raise
            meta = _read_json(path / METADATA)
    info = DatabaseInfo.from_dict(meta)
    try:
        stored = _read_json(path / str(meta["index"]))
        index = stored["packages"]
        if not isinstance(index, dict) or stored.get("sha256") != meta.get("sha256"):
            raise ValueError("index is not the snapshot's")
    except (OSError, ValueError, KeyError, TypeError):
        index = _scan(records).index  # a lost or damaged index costs one full read, nothing more
    return AdvisoryDatabase(records, index, info)


# --- updating ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(dest: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock
        yield
        return
    with open(dest / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _copy_limited(src: BinaryIO | Iterator[bytes], out: BinaryIO, max_bytes: int, what: str) -> None:
    total = 0
    chunks = iter(lambda: src.read(CHUNK), b"") if hasattr(src, "read") else src
    for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise UpdateError(f"{what} is larger than {max_bytes} bytes")
        out.write(chunk)


def _download(url: str, out: BinaryIO, *, timeout: float, max_bytes: int) -> None:
    import requests

    try:
        with requests.get(url, stream=True, timeout=timeout) as response:
            response.raise_for_status()
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise UpdateError(f"{redact_url(url)} is larger than {max_bytes} bytes")
            _copy_limited(response.iter_content(CHUNK), out, max_bytes, redact_url(url))
    except requests.RequestException as exc:
        raise UpdateError(redact_url(f"download of {url} failed: {type(exc).__name__}: {exc}")) from exc


def _pack_directory(src: Path, out: BinaryIO) -> None:
    records = _Records(src)
    names = records.names()
    if not names:
        raise UpdateError(f"no OSV records (*.json) in {src}")
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.write(src / name, name)


def update(
    source: str | Path,
    dest: Path,
    *,
    timeout: float = 60.0,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
    now: datetime | None = None,
) -> DatabaseInfo:
    """Refresh the database in `dest` from an http(s) URL, a local OSV zip or a directory of records.

    The new snapshot is written to a temporary file in `dest`, checked (a zip of valid OSV records,
    at least one for PyPI) and indexed, then switched in by atomically replacing `metadata.json`.
    Any failure raises UpdateError and leaves the previous database as it was.
    """
    dest = Path(dest)
    text = str(source)
    is_url = re.match(r"(?i)https?://", text) is not None
    if not is_url and "://" in text and not text.startswith("file://"):
        raise UpdateError(f"unsupported source {redact_url(text)} (expected an http(s) URL or a local path)")
    local = None if is_url else Path(text.removeprefix("file://"))
    if local is not None and not local.exists():
        raise UpdateError(f"{local}: no such file or directory")
    dest.mkdir(parents=True, exist_ok=True)
    with _locked(dest):
        fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=".download-", suffix=".zip")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                if local is None:
                    _download(text, out, timeout=timeout, max_bytes=max_bytes)
                elif local.is_dir():
                    _pack_directory(local, out)
                else:
                    with local.open("rb") as src:
                        _copy_limited(src, out, max_bytes, str(local))
                out.flush()
                os.fsync(out.fileno())
            return _install(tmp, dest, redact_url(text) if is_url else str(local.resolve()), local, now)
        except UpdateError:
            raise
        except _READ_ERRORS as exc:
            raise UpdateError(redact_url(f"update from {text} failed: {type(exc).__name__}: {exc}")) from exc
        finally:
            tmp.unlink(missing_ok=True)


def _install(tmp: Path, dest: Path, source: str, local: Path | None, now: datetime | None) -> DatabaseInfo:
    if not zipfile.is_zipfile(tmp):
        raise UpdateError(f"{source} is not a zip archive")
    records = _Records(tmp)
    try:
        scan = _scan(records)
    finally:
        records.close()
    if not scan.index:
        raise UpdateError(f"{source} holds no {ECOSYSTEM} advisories ({scan.records} records)")
    digest = hashlib.sha256()
    with tmp.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    sha = digest.hexdigest()
    carried: dict[str, Any] = {}  # a directory of records (the bundled sample) may describe itself
    if local is not None and local.is_dir() and (local / METADATA).is_file():
        with contextlib.suppress(OSError, ValueError):
            carried = _read_json(local / METADATA)
    info = DatabaseInfo(
        source=source,
        fetched_at=now or datetime.now(UTC),
        snapshot_at=_parse_time(carried.get("snapshot_at")) or scan.latest,
        records=scan.records,
        packages=len(scan.index),
        sample=bool(carried.get("sample", False)),
        sha256=sha,
    )
    stem = f"osv-{sha[:16]}"
    os.replace(tmp, dest / f"{stem}.zip")
    _write_atomic(dest / f"{stem}.index.json", json.dumps({"sha256": sha, "packages": scan.index}))
    meta = info.to_dict() | {"database": f"{stem}.zip", "index": f"{stem}.index.json"}
    _write_atomic(dest / METADATA, json.dumps(meta, indent=2) + "\n")
    _prune(dest, keep=stem)
    return info


def _prune(dest: Path, keep: str) -> None:
    """Remove snapshots beyond the current and the previous one, and downloads a crash left behind."""
    zips = sorted(dest.glob("osv-*.zip"), key=lambda p: p.stat().st_mtime, reverse=True)
    others = [p for p in zips if p.stem != keep][KEEP_SNAPSHOTS - 1 :]
    for old in others:
        old.unlink(missing_ok=True)
        (dest / f"{old.stem}.index.json").unlink(missing_ok=True)
    for partial in dest.glob(".download-*"):  # the lock is held: no other update is writing
        partial.unlink(missing_ok=True)


def read_info(dest: Path) -> DatabaseInfo | None:
    """The installed database's metadata, or None when there is none."""
    try:
        return DatabaseInfo.from_dict(_read_json(Path(dest) / METADATA))
    except (OSError, ValueError):
        return None


def open_for_scan(path: Path) -> tuple[AdvisoryDatabase | None, str | None]:
    """The database at `path`, else the bundled sample when nothing was installed there yet.

    Returns (database, None), or (None, problem) when an installed database cannot be read: the
    scan then completes and reports that advisories were not checked (it never crashes on it).
    """
    try:
        return open_database(path), None
    except DatabaseUnavailable as exc:
        if not exc.missing:
            return None, str(exc)
    try:
        return open_database(SAMPLE_DATABASE), None
    except DatabaseUnavailable as exc:
        return None, str(exc)
