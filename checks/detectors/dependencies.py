"""Dependency advisories: read an MLflow model's environment files statically and check every pin.

`read_environment` parses `requirements.txt` (pip syntax: includes, constraints, options, markers,
extras, direct references), `conda.yaml` (conda specs and the nested `pip:` list) and
`python_env.yaml` (`build_dependencies` and `dependencies`), never leaving the model directory.
`check_dependencies` turns that into findings: pins matching an advisory in the local OSV database
(severity from the record), unpinned requirements, direct URL/VCS/path references, extra package
sources, unreadable files (fail closed) and the database's own state (missing, sample, stale).
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement as Pep508

from checks.advisories import (
    Advisory,
    AdvisoryDatabase,
    DatabaseUnavailable,
    normalize,
    redact_url,
    version_key,
)
from checks.findings import Finding, Severity

VERSION = "1"
CHECK = "dependency_advisories"
STAGE = "registration"
TAXONOMY = {"owasp_ml": "ML06:2023", "atlas": "AML.T0010.001"}  # AI Supply Chain Compromise: AI Software
ENV_FILES = ("requirements.txt", "conda.yaml", "python_env.yaml")
STALE_AFTER_DAYS = 30
MAX_FILE_BYTES = 1024 * 1024
MAX_INCLUDE_DEPTH = 5
MAX_PROBLEMS = 50  # listed per file in evidence (problem_count has them all)
MAX_ENTRIES = 10_000  # dependency entries per model: YAML aliases cannot turn 1 MB into a hang
BUILD_TOOLS = frozenset({"pip", "setuptools", "wheel"})
# Advisories on what only builds the environment (pip, setuptools, wheel, python_env build
# dependencies) do not reach the model's serving code: visible, but below the default blocking line.
BUILD_TOOL_MAX_SEVERITY = Severity.MEDIUM
CONDA_TO_PYPI = {
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "pytorch-gpu": "torch",
    "py-xgboost": "xgboost",
    "py-xgboost-cpu": "xgboost",
    "py-xgboost-gpu": "xgboost",
    "tensorflow-gpu": "tensorflow",
}
CONDA_SKIP = frozenset({"python"})  # the interpreter, not a package on PyPI
DEFAULT_INDEX = "https://pypi.org/simple"
UPDATE_HINT = "Run `mlgate advisories update` where the network is reachable."

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_COMMENT = re.compile(r"(^|\s+)#.*$")
_SOURCE_OPTIONS = {
    "-i": "--index-url",
    "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "-f": "--find-links",
    "--find-links": "--find-links",
    "--trusted-host": "--trusted-host",
}
_IGNORED_OPTIONS = frozenset(
    {
        "--no-index",
        "--pre",
        "--prefer-binary",
        "--require-hashes",
        "--only-binary",
        "--no-binary",
        "--use-feature",
        "--config-settings",
        "--global-option",
        "--hash",
    }
)
_FLAG_OPTIONS = frozenset({"--no-index", "--pre", "--prefer-binary", "--require-hashes"})
_ARCHIVE = re.compile(r"\.(whl|zip|tar\.gz|tgz|tar\.bz2|tar\.xz)$", re.IGNORECASE)
_CONDA_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_][A-Za-z0-9_.\-]*)\s*(?P<rest>.*)$")
_CONDA_EXACT = re.compile(r"^==?\s*(?P<version>[^=,|<>!*\s]+)(?:=\S+)?$")
_CONDA_SPACED = re.compile(r"^(?P<version>[0-9][^=,|<>!*\s]*)(?:\s+\S+)?$")


@dataclass(frozen=True)
class Requirement:
    """One requirement as an environment file writes it."""

    name: str  # PEP 503 normalised; "" for a direct reference without a name
    file: str  # path inside the model directory
    line: int | None  # 1-based line in a requirements file; None in a YAML file
    text: str  # as written (credentials redacted)
    version: str | None = None  # the exact pin (== or ===), if any
    specifier: str = ""
    origin: str = "pip"  # pip | conda | build
    marker: str | None = None
    direct: str | None = None  # URL, VCS or path reference (redacted)
    constraint: bool = False  # from a `-c` constraints file


@dataclass(frozen=True)
class PackageSource:
    """An index or link option that makes pip look beyond PyPI."""

    option: str
    value: str
    file: str
    line: int | None


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    message: str


@dataclass
class Environment:
    """Everything read from a model's environment files."""

    files: list[str] = field(default_factory=list)
    requirements: list[Requirement] = field(default_factory=list)
    sources: list[PackageSource] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


# --- reading -------------------------------------------------------------------------------------


class _Exhausted(Exception):
    """More dependency entries than MAX_ENTRIES."""


class _Reader:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.env = Environment()
        self.seen: set[tuple[Path, bool]] = set()
        self.entries = 0

    def count(self) -> None:
        self.entries += 1
        if self.entries > MAX_ENTRIES:
            raise _Exhausted

    def problem(self, file: str, line: int | None, message: str) -> None:
        self.env.problems.append(Problem(file, line, message))

    def text(self, rel: str, *, cited_in: str, line: int | None) -> tuple[str, str] | None:
        """(name inside the model dir, content) of a file, or None after recording why not."""
        if re.match(r"(?i)[a-z][a-z0-9+.-]*://", rel):
            self.problem(cited_in, line, f"remote file {redact_url(rel)} is not read")
            return None
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root):
            self.problem(cited_in, line, f"{rel} is outside the model directory")
            return None
        name = path.relative_to(self.root).as_posix()
        if not path.is_file():
            self.problem(cited_in, line, f"{rel} does not exist or is not a regular file")
            return None
        if path.stat().st_size > MAX_FILE_BYTES:
            self.problem(name, None, f"larger than {MAX_FILE_BYTES} bytes")
            return None
        try:
            return name, path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            self.problem(name, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
        except OSError as exc:
            self.problem(name, None, f"unreadable: {exc.strerror or exc}")
        return None

    # pip requirements files ------------------------------------------------------------------

    def requirements_file(
        self, rel: str, *, cited_in: str, line: int | None, depth: int, constraint: bool
    ) -> None:
        if depth > MAX_INCLUDE_DEPTH:
            self.problem(cited_in, line, f"includes nested deeper than {MAX_INCLUDE_DEPTH} levels")
            return
        key = ((self.root / rel).resolve(), constraint)
        if key in self.seen:
            return
        self.seen.add(key)
        read = self.text(rel, cited_in=cited_in, line=line)
        if read is None:
            return
        name, content = read
        if name not in self.env.files:
            self.env.files.append(name)
        for number, logical in _logical_lines(content):
            self.pip_line(logical, file=name, line=number, origin="pip", depth=depth, constraint=constraint)

    def pip_line(
        self, text: str, *, file: str, line: int | None, origin: str, depth: int, constraint: bool
    ) -> None:
        self.count()
        text = _COMMENT.sub("", text).strip()
        if not text:
            return
        if text.startswith("-"):
            self.option(text, file=file, line=line, origin=origin, depth=depth, constraint=constraint)
            return
        # pip's own split: the requirement is every token before the first option (--hash=... etc.)
        tokens = text.split(" ")
        cut = next((i for i, t in enumerate(tokens) if t.startswith("-")), len(tokens))
        for option in tokens[cut:]:
            if option.startswith("-") and option.split("=", 1)[0] not in _IGNORED_OPTIONS:
                self.problem(file, line, f"unknown per-requirement option {option.split('=', 1)[0]}")
        self.requirement(
            " ".join(tokens[:cut]).strip(), file=file, line=line, origin=origin, constraint=constraint
        )

    def option(
        self, text: str, *, file: str, line: int | None, origin: str, depth: int, constraint: bool
    ) -> None:
        match = re.match(r"^(--[A-Za-z][\w-]*)(?:\s*=\s*|\s+|$)(.*)$", text) or re.match(
            r"^(-[A-Za-z])\s*(.*)$", text
        )
        if match is None:
            self.problem(file, line, f"unparseable option {text[:80]!r}")
            return
        option, value = match.group(1), match.group(2).strip()
        if option in ("-r", "--requirement", "-c", "--constraint"):
            if not value:
                self.problem(file, line, f"{option} without a file")
                return
            base = Path(file).parent.as_posix()
            remote = re.match(r"(?i)[a-z][a-z0-9+.-]*://", value) is not None
            rel = value if remote or Path(value).is_absolute() else f"{base}/{value}"
            is_constraint = constraint or option in ("-c", "--constraint")
            self.requirements_file(rel, cited_in=file, line=line, depth=depth + 1, constraint=is_constraint)
        elif option in ("-e", "--editable"):
            self.requirement(value, file=file, line=line, origin=origin, constraint=constraint, editable=True)
        elif option in _SOURCE_OPTIONS:
            if not value:
                self.problem(file, line, f"{option} without a value")
            elif not (_SOURCE_OPTIONS[option] == "--index-url" and value.rstrip("/") == DEFAULT_INDEX):
                self.env.sources.append(PackageSource(_SOURCE_OPTIONS[option], redact_url(value), file, line))
        elif option in _IGNORED_OPTIONS:
            if option not in _FLAG_OPTIONS and not value:
                self.problem(file, line, f"{option} without a value")
        else:
            self.problem(file, line, f"unknown option {option}")

    def requirement(
        self, text: str, *, file: str, line: int | None, origin: str, constraint: bool, editable: bool = False
    ) -> None:
        shown = redact_url(text)[:300]
        if not editable:
            try:
                req = _pep508(text)
            except InvalidRequirement as exc:
                if not _looks_direct(text):
                    self.problem(file, line, f"invalid requirement {shown!r}: {str(exc).splitlines()[0]}")
                    return
            else:
                name = normalize(req.name)
                marker = str(req.marker) if req.marker else None
                if req.url:
                    self.env.requirements.append(
                        Requirement(
                            name, file, line, shown, origin=origin, marker=marker, direct=redact_url(req.url)
                        )
                    )
                    return
                exact = [
                    s for s in req.specifier if s.operator in ("==", "===") and not s.version.endswith("*")
                ]
                self.env.requirements.append(
                    Requirement(
                        name,
                        file,
                        line,
                        shown,
                        version=exact[0].version if exact else None,
                        specifier=str(req.specifier),
                        origin="build" if name in BUILD_TOOLS and origin == "pip" else origin,
                        marker=marker,
                        constraint=constraint,
                    )
                )
                return
        if not text:
            self.problem(file, line, "editable requirement without a target")
            return
        self.env.requirements.append(
            Requirement(_direct_name(text), file, line, shown, origin=origin, direct=redact_url(text))
        )

    # YAML environments -----------------------------------------------------------------------

    def yaml_file(self, rel: str) -> dict[str, Any] | None:
        read = self.text(rel, cited_in=rel, line=None)
        if read is None:
            return None
        name, content = read
        self.env.files.append(name)
        try:
            data = yaml.load(content, Loader=_YAML_LOADER)  # safe: plain data types only
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            self.problem(
                name, mark.line + 1 if mark else None, f"invalid YAML: {getattr(exc, 'problem', exc)}"
            )
            return None
        if not isinstance(data, dict):
            self.problem(name, None, f"expected a mapping at the top level, got {type(data).__name__}")
            return None
        return data

    def yaml_list(self, data: dict[str, Any], key: str, file: str) -> list[Any]:
        items = data.get(key)
        if items is None:
            return []
        if not isinstance(items, list):
            self.problem(file, None, f"`{key}` is not a list")
            return []
        return items

    def conda(self, rel: str) -> None:
        data = self.yaml_file(rel)
        if data is None:
            return
        for position, item in enumerate(self.yaml_list(data, "dependencies", rel), 1):
            if isinstance(item, str):
                self.conda_spec(item, file=rel)
            elif isinstance(item, dict) and set(item) == {"pip"} and isinstance(item["pip"], list):
                for sub, entry in enumerate(item["pip"], 1):
                    if isinstance(entry, str):
                        self.pip_line(entry, file=rel, line=None, origin="pip", depth=0, constraint=False)
                    else:
                        self.problem(rel, None, f"`pip` entry {sub} of dependency {position} is not a string")
            else:
                self.problem(rel, None, f"dependency {position} is neither a spec nor a `pip:` list")

    def conda_spec(self, spec: str, *, file: str) -> None:
        self.count()
        text = spec.strip().split("::", 1)[-1]
        bracket = re.match(r"^([^\[\s]+)\s*\[(.*)\]$", text)
        if bracket:
            version = re.search(r"version\s*=\s*['\"]?([^'\",\]]+)", bracket.group(2))
            text = f"{bracket.group(1)} {version.group(1).strip()}" if version else bracket.group(1)
        match = _CONDA_SPEC.match(text)
        if match is None:
            self.problem(file, None, f"invalid conda spec {spec[:80]!r}")
            return
        conda_name, rest = match.group("name").lower(), match.group("rest").strip()
        if conda_name in CONDA_SKIP:
            return
        exact = _CONDA_EXACT.match(rest) or _CONDA_SPACED.match(rest)
        name = normalize(CONDA_TO_PYPI.get(conda_name, conda_name))
        self.env.requirements.append(
            Requirement(
                name,
                file,
                None,
                spec.strip()[:300],
                version=exact.group("version") if exact else None,
                specifier=rest,
                origin="build" if name in BUILD_TOOLS else "conda",
            )
        )

    def python_env(self, rel: str) -> None:
        data = self.yaml_file(rel)
        if data is None:
            return
        for key, origin in (("build_dependencies", "build"), ("dependencies", "pip")):
            for position, item in enumerate(self.yaml_list(data, key, rel), 1):
                if isinstance(item, str):
                    self.pip_line(item, file=rel, line=None, origin=origin, depth=0, constraint=False)
                else:
                    self.problem(rel, None, f"`{key}` entry {position} is not a string")


@functools.lru_cache(maxsize=4096)
def _pep508(text: str) -> Pep508:
    return Pep508(text)


def _logical_lines(content: str) -> list[tuple[int, str]]:
    """Physical lines joined at trailing backslashes, each with its first line number."""
    out: list[tuple[int, str]] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(content.splitlines(), 1):
        if not parts:
            start = number
        if raw.endswith("\\") and not _COMMENT.match(raw):
            parts.append(raw[:-1])
            continue
        parts.append(raw)
        out.append((start, " ".join(p.strip() for p in parts)))
        parts = []
    if parts:
        out.append((start, " ".join(p.strip() for p in parts)))
    return out


def _looks_direct(text: str) -> bool:
    return (
        "://" in text
        or re.match(r"^(git|hg|svn|bzr)\+", text) is not None
        or text.startswith((".", "/", "~", "file:"))
        or _ARCHIVE.search(text.split("#", 1)[0]) is not None
    )


def _direct_name(text: str) -> str:
    """The package name a direct reference names (#egg=, or an archive's file name), else ""."""
    egg = re.search(r"[#&]egg=([A-Za-z0-9_.\-]+)", text)
    if egg:
        return normalize(egg.group(1))
    base = text.split("#", 1)[0].split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    archive = re.match(r"^([A-Za-z0-9_.]+?)-\d", base) if _ARCHIVE.search(base) else None
    return normalize(archive.group(1)) if archive else ""


def _direct_key(req: Requirement) -> str:
    """Stable identity of a direct reference: its name, else its location without revision or query."""
    if req.name:
        return req.name
    parts = urlsplit(req.direct or "")
    path = re.sub(r"@[^/]*$", "", parts.path)
    return f"{parts.netloc}{path}" if parts.netloc else path


def read_environment(model_dir: Path) -> Environment:
    """Parse the environment files of an MLflow model directory (never reading outside it)."""
    reader = _Reader(Path(model_dir))
    for name in ENV_FILES:
        if not (reader.root / name).exists() and not (reader.root / name).is_symlink():
            continue
        try:
            if name == "requirements.txt":
                reader.requirements_file(name, cited_in=name, line=None, depth=0, constraint=False)
            elif name == "conda.yaml":
                reader.conda(name)
            else:
                reader.python_env(name)
        except _Exhausted:
            reader.problem(name, None, f"more than {MAX_ENTRIES} dependency entries; the rest was not read")
            break
    return reader.env


# --- findings ------------------------------------------------------------------------------------


def _finding(
    severity: Severity,
    key: str,
    title: str,
    remediation: str,
    *,
    identity: str,
    subject: dict[str, Any] | None,
    **evidence: Any,
) -> Finding:
    return Finding(
        check=CHECK,
        severity=severity,
        title=title,
        stage=STAGE,
        subject_identity=identity,
        key=key,
        subject=subject or {},
        evidence=evidence,
        taxonomy=TAXONOMY,
        remediation=remediation,
    )


def _where(reqs: list[Requirement]) -> list[dict[str, Any]]:
    seen: dict[tuple[str, int | None, str], dict[str, Any]] = {}
    for r in reqs:
        entry = {"file": r.file, "line": r.line, "text": r.text}
        if r.version:
            entry["version"] = r.version
        if r.marker:
            entry["marker"] = r.marker
        if r.constraint:
            entry["constraint"] = True
        seen.setdefault((r.file, r.line, r.text), entry)
    return list(seen.values())


def _advisory_finding(
    package: str, hits: list[tuple[Requirement, Advisory]], *, identity: str, subject: dict[str, Any] | None
) -> Finding:
    newest = max(hits, key=lambda h: version_key(h[1].version))[1]
    first_req = min((r for r, _ in hits), key=lambda r: (r.file, r.line or 0))
    versions = sorted({a.version for _, a in hits}, key=version_key)
    alias = next(
        (a for a in newest.aliases if a.startswith("CVE-")), newest.aliases[0] if newest.aliases else ""
    )
    fix = newest.next_fixed
    remediation = (
        f"Pin {package}=={fix} or later (the first fixed release) and re-log the model."
        if fix
        else f"No fixed release is listed for {newest.id}: replace or remove {package}, or waive it."
    )
    severity = max(a.severity for _, a in hits)
    capped = {}
    if all(r.origin == "build" for r, _ in hits) and severity > BUILD_TOOL_MAX_SEVERITY:
        capped = {"record_severity": severity.label, "build_tool": True}
        severity = BUILD_TOOL_MAX_SEVERITY
    return _finding(
        severity,
        f"advisory:{package}:{newest.id}",
        f"{package} {', '.join(versions)} is affected by {newest.id}" + (f" ({alias})" if alias else ""),
        remediation,
        identity=identity,
        subject=subject,
        package=package,
        version=newest.version,
        **({"versions": versions} if len(versions) > 1 else {}),
        advisory=newest.id,
        aliases=list(newest.aliases),
        fixed=list(newest.fixed),
        summary=newest.summary,
        severity_source=newest.severity_source,
        references=list(newest.references),
        file=first_req.file,
        pins=_where([r for r, _ in hits]),
        **capped,
    )


def _database_findings(
    database: AdvisoryDatabase | None,
    problem: str | None,
    *,
    stale_after_days: float,
    now: datetime | None,
    identity: str,
    subject: dict[str, Any] | None,
) -> list[Finding]:
    if database is None:
        return [
            _finding(
                Severity.MEDIUM,
                "advisory_database_unavailable",
                "Dependency pins not checked against advisories: " + (problem or "no advisory database"),
                UPDATE_HINT,
                identity=identity,
                subject=subject,
                problem=problem or "no advisory database",
            )
        ]
    info, found = database.info, []
    meta = {"source": info.source, "records": info.records, "packages": info.packages}
    if info.sample:
        found.append(
            _finding(
                Severity.MEDIUM,
                "advisory_database_sample",
                f"Advisories checked only against the bundled sample ({info.packages} packages)",
                UPDATE_HINT,
                identity=identity,
                subject=subject,
                **meta,
            )
        )
    age = info.age_days(now)
    if age is None or age > stale_after_days:
        at = info.snapshot_at or info.fetched_at
        found.append(
            _finding(
                Severity.LOW,
                "advisory_database_stale",
                "Advisory snapshot is "
                + (f"{int(age)} days old (from {at:%Y-%m-%d})" if age is not None and at else "undated"),
                UPDATE_HINT,
                identity=identity,
                subject=subject,
                age_days=None if age is None else round(age, 1),
                stale_after_days=stale_after_days,
                snapshot_at=info.snapshot_at.isoformat() if info.snapshot_at else None,
                fetched_at=info.fetched_at.isoformat() if info.fetched_at else None,
                **meta,
            )
        )
    return found


def _file_findings(env: Environment, ident: dict[str, Any]) -> list[Finding]:
    """No environment at all (medium); a file that cannot be fully read blocks (fail closed)."""
    if not env.files and not env.problems:
        return [
            _finding(
                Severity.MEDIUM,
                "no_environment",
                "Model has no environment file (requirements.txt, conda.yaml or python_env.yaml)",
                "Log the model with MLflow's default environment files and exact pins.",
                **ident,
            )
        ]
    by_file: dict[str, list[Problem]] = defaultdict(list)
    for p in env.problems:
        by_file[p.file].append(p)
    return [
        _finding(
            Severity.HIGH,
            f"unreadable:{file}",
            f"Environment file {file} cannot be fully read: {problems[0].message}",
            "Fix the file so every dependency can be checked (pip and conda must be able to read it).",
            file=file,
            problems=[{"line": p.line, "message": p.message} for p in problems[:MAX_PROBLEMS]],
            problem_count=len(problems),
            **ident,
        )
        for file, problems in sorted(by_file.items())
    ]


def _source_findings(env: Environment, ident: dict[str, Any]) -> list[Finding]:
    """Index and link options beyond PyPI, one finding per option and host."""
    sources: dict[tuple[str, str], list[PackageSource]] = defaultdict(list)
    for s in env.sources:
        sources[(s.option, urlsplit(s.value).hostname or s.value)].append(s)
    return [
        _finding(
            Severity.MEDIUM,
            f"package_source:{option}:{host}",
            f"Packages may come from outside PyPI ({option} {items[0].value})",
            "Install from one trusted index (a private mirror with --index-url, not "
            "--extra-index-url) and pin with hashes; an extra index lets a same-named package win "
            "(dependency confusion).",
            option=option,
            value=items[0].value,
            where=[{"file": s.file, "line": s.line} for s in items],
            **ident,
        )
        for (option, host), items in sorted(sources.items())
    ]


def _direct_findings(env: Environment, ident: dict[str, Any]) -> list[Finding]:
    groups: dict[str, list[Requirement]] = defaultdict(list)
    for r in env.requirements:
        if r.direct:
            groups[_direct_key(r)].append(r)
    return [
        _finding(
            Severity.MEDIUM,
            f"direct_reference:{key}",
            f"Dependency installed from a URL, VCS or path: {reqs[0].direct}",
            "Publish the package to a trusted index and pin it with == (and hashes); direct "
            "references bypass advisory checks and can change under the same URL.",
            package=reqs[0].name or None,
            url=reqs[0].direct,
            where=_where(reqs),
            **ident,
        )
        for key, reqs in sorted(groups.items())
    ]


def _unpinned_finding(package: str, reqs: list[Requirement], ident: dict[str, Any]) -> Finding | None:
    """Medium for what the model runs with, low for build tooling; a constraint pin counts as a pin."""
    loose = [r for r in reqs if not r.version and not r.constraint]
    if not loose or any(r.constraint and r.version for r in reqs):
        return None
    return _finding(
        Severity.LOW if all(r.origin == "build" for r in loose) else Severity.MEDIUM,
        f"unpinned:{package}",
        f"{package} is not pinned to an exact version"
        + (f" ({loose[0].specifier})" if loose[0].specifier else ""),
        f"Pin {package} with == so the served environment is the one that was scanned.",
        package=package,
        where=_where(loose),
        **ident,
    )


def check_dependencies(
    env: Environment,
    database: AdvisoryDatabase | None,
    *,
    subject_identity: str,
    subject: dict[str, Any] | None = None,
    database_problem: str | None = None,
    stale_after_days: float = STALE_AFTER_DAYS,
    now: datetime | None = None,
) -> list[Finding]:
    """Findings for one model's environment; `database` None means advisories could not be checked
    (`database_problem` says why). One finding per package and pattern, whatever the file count."""
    ident = {"identity": subject_identity, "subject": subject}
    found = _file_findings(env, ident) + _source_findings(env, ident) + _direct_findings(env, ident)
    packages: dict[str, list[Requirement]] = defaultdict(list)
    for r in env.requirements:
        if not r.direct:
            packages[r.name].append(r)
    hits: dict[tuple[str, str], list[tuple[Requirement, Advisory]]] = defaultdict(list)
    pins = sorted({(name, r.version) for name, reqs in packages.items() for r in reqs if r.version})
    problem = database_problem
    for name, reqs in sorted(packages.items()):
        unpinned = _unpinned_finding(name, reqs, ident)
        found += [unpinned] if unpinned else []
    if database is not None:
        try:
            for name, version in pins:
                for advisory in database.query(name, version):
                    matching = [r for r in packages[name] if r.version == version]
                    hits[(name, advisory.id)].extend((r, advisory) for r in matching)
        except DatabaseUnavailable as exc:
            database, problem = None, str(exc)
    found += [_advisory_finding(name, pairs, **ident) for (name, _), pairs in sorted(hits.items())]
    if pins:  # the database's state matters only when there was something to look up
        found += _database_findings(database, problem, stale_after_days=stale_after_days, now=now, **ident)
    return found


def scan_dependencies(model_dir: Path, database: AdvisoryDatabase | None, **options: Any) -> list[Finding]:
    """read_environment + check_dependencies (same keyword options) for an MLflow model directory."""
    return check_dependencies(read_environment(model_dir), database, **options)
