"""mlgate's static artifact scanner side by side with picklescan and modelscan, in one run.

It builds the project's scanner corpus (tests/artifact_corpus_cases.py: every malicious case with
its harmless canary payload, and the benign artifacts written by the real libraries) in a temporary
directory, then:

  1. detection: `mlgate scan-artifact PATH --format json`, `picklescan -p PATH` and
     `modelscan -p PATH -r json -o FILE` once per corpus entry, recording flagged / clean / error,
     and for modelscan "skipped" (exit 3 and no error: it scanned nothing). mlgate counts as flagged
     when it reports a finding at medium or above. Each CLI's own entry point (`mlgate.cli.main`,
     `picklescan.cli.main`, `modelscan.cli.main`) runs in-process with its output captured, mlgate
     in this process and the other two in one process of their virtualenv, because ~500 process
     starts at 1-3 s each under load would take most of the time budget; `--separate-processes`
     runs one process per call instead (same verdicts, checked). The limit cases (a case with its
     own scan policy) are scanned with `scan_path(policy=...)`, because the CLI's policy file
     cannot set every limit (`ratio_floor_bytes`); their CLI result with the default limits is kept
     too. The corpus names most single files `artifact.bin`, an extension picklescan and modelscan
     read as PyTorch: they also scan a hard link of the same bytes named `artifact.pkl`, and count
     as flagging the file when they flag either name. After the run no canary may exist.
  2. per-call wall time of the whole process, `mlgate scan-artifact FILE` against
     `picklescan -p FILE` and `modelscan -p FILE` (and `python -c pass` in each environment), on
     three files every tool reads: a malicious pickle, a pickle of scikit-learn estimators and a
     plain joblib file. One warm-up call each, then interleaved rounds; median and min per cell.
  3. throughput in-process: a ~200 MB float64 array in a joblib file and a large scikit-learn
     RandomForest pickle, scanned with `scan_path` (and picklescan's `scan_file_path` and
     modelscan's `ModelScan().scan` in their own environment), median of a few runs, in MB/s
     (10^6 bytes per second).

picklescan and modelscan run in a separate virtualenv (default `bench/.venv-scanners`, git-ignored),
created on demand with `python -m venv` and `pip install picklescan==1.0.5 modelscan==0.8.8`.

Bytecode: this environment may set PYTHONDONTWRITEBYTECODE=1, and the repository's own packages
have no `__pycache__` in a fresh clone, while pip compiled the scanners' packages at install. So
before timing, `compileall` runs on `mlgate/`, `checks/` and the scanners' site-packages, the timed
subprocesses run without PYTHONDONTWRITEBYTECODE (the warm-up call writes whatever is still
missing), and a check run of each tool's real command lists the imported modules that still have
no bytecode (expected: none).

Machine load (os.getloadavg) is recorded with every timed round: other processes share the cores.

Run from the repo root: `.venv/bin/python bench/bench_artifact_scan.py [--repeat 11] [--big-mb 200]`
(about 2-3 minutes). It writes `bench/results_artifact_scan.json` and `bench/out/artifact_scan.md`
(`--json`, `--markdown`) and prints the tables. It exits 1 when mlgate misses a file picklescan or
modelscan flags, flags a benign file, or misses a corpus case, or when a canary appears.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import pickle
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.artifact_corpus*: the corpus builders

from machine import machine  # noqa: E402

from checks.artifact_scan import ScanPolicy, scan_path  # noqa: E402
from checks.findings import Severity  # noqa: E402
from tests.artifact_corpus import SystemCanary, pickled  # noqa: E402
from tests.artifact_corpus_cases import BENIGN, MALICIOUS  # noqa: E402

PINS = {"picklescan": "1.0.5", "modelscan": "0.8.8"}
DEFAULT_VENV = REPO / "bench" / ".venv-scanners"
MB = 1_000_000
FLAGGED, CLEAN, ERROR, SKIPPED = "flagged", "clean", "error", "skipped"
TOOLS = ("mlgate", "picklescan", "modelscan")
# an expectation naming one of these kinds (not a dotted global) still means a payload would run
PAYLOAD_KINDS = ("dynamic_call", "dynamic_import", "build_on_global")


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------- environments


@dataclass
class Tools:
    """The executables of the three scanners and the interpreters they run on."""

    mlgate: Path
    mlgate_python: Path
    scanners_python: Path
    picklescan: Path
    modelscan: Path
    versions: dict[str, str]
    env: dict[str, str]  # environment of every subprocess: no PYTHONDONTWRITEBYTECODE, no policy
    cwd: Path  # a scratch directory: no mlgate.yaml or modelscan-settings.toml is picked up


def _versions(python: Path, names: list[str]) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = None\n"
        "print(json.dumps(out))"
    )
    result = subprocess.run([python, "-c", code, *names], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def _freeze(python: Path) -> dict[str, str]:
    listing = subprocess.run(
        [python, "-m", "pip", "list", "--format", "json"], capture_output=True, text=True, check=True
    ).stdout
    return {p["name"]: p["version"] for p in json.loads(listing)}


def ensure_scanners(venv: Path) -> Path:
    """The scanners' virtualenv with the pinned picklescan and modelscan; created when missing."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} (python -m venv) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if _versions(python, list(PINS)) != PINS:
        pins = [f"{name}=={version}" for name, version in PINS.items()]
        print(f"pip install {' '.join(pins)} into {venv} ...", flush=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", *pins], check=True)
    return python


def compile_bytecode(tools: Tools) -> dict[str, Any]:
    """Compile what each tool runs, so no side pays for compiling source on every call."""
    steps = []
    targets = [
        (tools.mlgate_python, [str(REPO / "mlgate"), str(REPO / "checks")]),
        (
            tools.scanners_python,
            [
                subprocess.run(
                    [
                        tools.scanners_python,
                        "-c",
                        "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.strip()
            ],
        ),
    ]
    for python, dirs in targets:
        start = time.perf_counter()
        subprocess.run([python, "-m", "compileall", "-q", *dirs], check=True, env=tools.env)
        steps.append(
            {"python": str(python), "compileall": dirs, "seconds": round(time.perf_counter() - start, 1)}
        )
    return {"compileall": steps}


# Runs a tool's real entry point, then lists the imported modules whose source has no bytecode cache.
_BYTECODE_PROBE = """
import atexit, importlib, importlib.util, json, os, sys
def _report():
    missing = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if path.endswith(".py") and not os.path.exists(importlib.util.cache_from_source(path)):
            missing.append(name)
    sys.stderr.write("BYTECODE-PROBE " + json.dumps(sorted(missing)) + "\\n")
atexit.register(_report)
entry, argv = sys.argv[1], sys.argv[2:]
module, func = entry.split(":")
sys.argv = [module] + argv
sys.exit(getattr(importlib.import_module(module), func)())
"""


def probe_bytecode(tools: Tools, sample: Path) -> dict[str, list[str]]:
    """Each tool's command once more with PYTHONDONTWRITEBYTECODE=1: modules still without bytecode."""
    env = dict(tools.env, PYTHONDONTWRITEBYTECODE="1")
    runs = {
        "mlgate": (tools.mlgate_python, "mlgate.cli:main", ["scan-artifact", str(sample)]),
        "picklescan": (tools.scanners_python, "picklescan.cli:main", ["-p", str(sample)]),
        "modelscan": (tools.scanners_python, "modelscan.cli:main", ["-p", str(sample)]),
    }
    out = {}
    for name, (python, entry, argv) in runs.items():
        result = subprocess.run(
            [python, "-c", _BYTECODE_PROBE, entry, *argv],
            capture_output=True,
            text=True,
            env=env,
            cwd=tools.cwd,
        )
        line = [x for x in result.stderr.splitlines() if x.startswith("BYTECODE-PROBE ")]
        out[name] = json.loads(line[-1].split(" ", 1)[1]) if line else ["<probe did not report>"]
    return out


# ---------------------------------------------------------------- the corpus


@dataclass
class Entry:
    """One corpus case as written to disk."""

    id: str
    kind: str  # malicious | benign
    category: str  # payload | fail-closed | limit | benign
    path: Path
    canary: Path
    policy: dict | None
    alias: Path | None = None  # the same bytes named .pkl, for the name-driven tools
    bytes: int = 0  # on disk (a directory: its files)
    is_dir: bool = False


def _category(case) -> str:
    if case.policy:
        return "limit"
    if any("." in e.what or e.what.startswith(PAYLOAD_KINDS) for e in case.expect):
        return "payload"
    return "fail-closed"


def build_corpus(root: Path) -> list[Entry]:
    entries = []
    for kind, cases in (("malicious", MALICIOUS), ("benign", BENIGN)):
        for case in cases:
            directory = root / kind / case.id
            directory.mkdir(parents=True)
            canary = directory / "CANARY"
            path = case.build(directory, canary)
            entry = Entry(
                case.id,
                kind,
                _category(case) if kind == "malicious" else "benign",
                path,
                canary,
                case.policy,
            )
            entry.bytes, entry.is_dir = _size(path), path.is_dir()
            if kind == "malicious" and path.is_file() and path.suffix == ".bin":
                entry.alias = path.with_suffix(".pkl")
                os.link(path, entry.alias)
            entries.append(entry)
    return entries


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.name != "CANARY")


# ---------------------------------------------------------------- detection


@dataclass
class Verdict:
    state: str  # flagged | clean | error | skipped
    exit_code: int | None
    said: str  # what the tool reported, briefly
    seconds: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Call:
    """One CLI invocation, before interpretation: its exit code and output."""

    rc: int
    out: str
    err: str
    seconds: float
    cpu_s: float | None = None  # user + system CPU of the child (meaningful when calls are sequential)


def _run(argv: list[Any], tools: Tools, timeout: float = 300) -> Call:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        result = subprocess.run(
            [str(a) for a in argv],
            capture_output=True,
            text=True,
            env=tools.env,
            cwd=tools.cwd,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return Call(-1, "", f"timed out after {timeout}s", time.perf_counter() - start)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    return Call(result.returncode, result.stdout, result.stderr, seconds, cpu)


def _mlgate_summary(items: list[tuple[str, str]]) -> str:
    """'posix.system (critical); ...' from (name, severity) pairs, worst first, at most 4."""
    items = sorted(set(items), key=lambda x: (-int(Severity.parse(x[1])), x[0]))
    text = "; ".join(f"{name} ({sev})" for name, sev in items[:4])
    return text + (f"; +{len(items) - 4} more" if len(items) > 4 else "")


def _finding_name(key: str, evidence: dict[str, Any]) -> str:
    return evidence.get("global") or key.split("|", 1)[0]


def mlgate_argv(path: Path) -> list[str]:
    return ["scan-artifact", str(path), "--format", "json"]


def mlgate_verdict(call: Call) -> Verdict:
    try:
        report = json.loads(call.out)
    except ValueError:
        return Verdict(ERROR, call.rc, f"no JSON report: {call.err.strip()[-200:]}", call.seconds)
    found = [
        (_finding_name(f["key"], f.get("evidence") or {}), f["severity"])
        for f in report.get("findings", [])
        if Severity.parse(f["severity"]) >= Severity.MEDIUM
    ]
    state = FLAGGED if found else (CLEAN if call.rc in (0, 1) else ERROR)
    said = _mlgate_summary(found) if found else f"verdict {report.get('verdict')}, no finding >= medium"
    detail = {"verdict": report.get("verdict"), "counts": report.get("counts")}
    return Verdict(state, call.rc, said, call.seconds, detail)


def mlgate_in_process(path: Path) -> Call:
    """`mlgate scan-artifact PATH --format json` through mlgate.cli.main in this process."""
    from mlgate.cli import main as mlgate_main

    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = mlgate_main(mlgate_argv(path))
    return Call(rc, out.getvalue(), err.getvalue(), time.perf_counter() - start)


def mlgate_with_policy(path: Path, policy: dict) -> Verdict:
    """In-process scan_path with the case's own limits (the CLI policy file cannot set them all)."""
    start = time.perf_counter()
    findings = scan_path(path, policy=ScanPolicy.from_mapping(policy), subject_identity="bench")
    seconds = time.perf_counter() - start
    found = [
        (_finding_name(f.key, f.evidence), f.severity.label)
        for f in findings
        if f.severity >= Severity.MEDIUM
    ]
    said = _mlgate_summary(found) if found else "no finding >= medium"
    return Verdict(FLAGGED if found else CLEAN, None, f"[policy {policy}] {said}", seconds)


_FOUND = re.compile(r"(dangerous|suspicious) import '([^']+)' FOUND")


def picklescan_verdict(call: Call, path: Path) -> Verdict:
    text = call.out + "\n" + call.err
    counts = {k: int(v) for k, v in re.findall(r"(Dangerous|Suspicious) globals: (\d+)", text)}
    dangerous = sorted({g.replace(" ", ".") for level, g in _FOUND.findall(text) if level == "dangerous"})
    problems = [
        re.sub(re.escape(str(path.parent)) + "/?", "", line.strip())[:160]
        for line in text.splitlines()
        if re.search(r"ERROR|WARNING|Exception|Traceback", line) and "FOUND" not in line
    ]
    detail = {"dangerous": dangerous, "counts": counts, "problems": problems[:5]}
    if dangerous or counts.get("Dangerous", 0) or call.rc == 1:
        state, said = FLAGGED, "dangerous: " + ", ".join(dangerous or ["?"])
        if call.rc == 2:
            said += " (+ scan error)"
    elif call.rc == 0:
        state = CLEAN
        said = problems[0] if problems else "no dangerous global"
        if counts.get("Suspicious"):
            said += f" ({counts['Suspicious']} suspicious global(s), not an issue by default)"
    else:
        state, said = ERROR, (problems[0] if problems else f"exit {call.rc}")
    return Verdict(state, call.rc, said, call.seconds, detail)


def modelscan_verdict(call: Call, report_file: Path) -> Verdict:
    try:
        report = json.loads(report_file.read_text())
        report_file.unlink()
    except (OSError, ValueError):
        report = None
    if report is None:
        lines = (call.out + call.err).splitlines()
        message = next((x for x in lines if x.startswith(("Exception", "Error"))), "")
        state = SKIPPED if call.rc == 3 else ERROR
        return Verdict(state, call.rc, message[:160] or f"exit {call.rc}, no report", call.seconds)
    issues = [
        f"{i.get('module')}.{i.get('operator')} ({str(i.get('severity', '?')).lower()})"
        for i in report["issues"]
    ]
    errors = [str(e.get("description") or e.get("message") or e)[:160] for e in report.get("errors", [])]
    scanned = report["summary"].get("scanned", {}).get("total_scanned", 0)
    detail = {"issues": issues, "errors": errors, "scanned": scanned}
    # The console says "No issues found!" in every case but the first; the exit code is 3 whenever
    # nothing was scanned, also when the scan of the only file failed.
    if issues:
        state, said = FLAGGED, "; ".join(sorted(set(issues))[:4])
        if errors:
            said += f" (+ error: {errors[0]})"
    elif errors or call.rc == 2:
        state, said = ERROR, f"No issues found + error: {errors[0] if errors else '?'} (exit {call.rc})"
    elif call.rc == 3 or not scanned:
        state, said = SKIPPED, "No issues found, nothing scanned (exit 3)"
    else:
        state, said = CLEAN, "No issues found"
    return Verdict(state, call.rc, said, call.seconds, detail)


# Runs picklescan's and modelscan's own CLI entry points (picklescan.cli.main, modelscan.cli.main)
# in one process, one call per job, with the output captured: the CLIs without the process start.
_SCANNERS_CLI = r"""
import contextlib, io, json, logging, sys, time
import picklescan.cli, modelscan.cli
out = []
for tool, argv in json.load(sys.stdin):
    module = picklescan.cli if tool == "picklescan" else modelscan.cli
    stdout, stderr = io.StringIO(), io.StringIO()
    sys.argv = [tool, *argv]
    start = time.perf_counter()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            rc = module.main()
        except SystemExit as exc:
            rc = exc.code
    seconds = time.perf_counter() - start
    for name in ("picklescan", "modelscan"):
        logging.getLogger(name).handlers.clear()  # each main() adds a handler
    out.append({"rc": 0 if rc is None else rc, "out": stdout.getvalue(), "err": stderr.getvalue(),
                "seconds": seconds})
print(json.dumps(out))
"""


@dataclass
class Row:
    entry: Entry
    mlgate: Verdict
    picklescan: Verdict
    modelscan: Verdict
    picklescan_alias: Verdict | None = None
    modelscan_alias: Verdict | None = None
    mlgate_cli_default: Verdict | None = None  # limit cases: the CLI with the default policy

    def flagged(self, tool: str) -> bool:
        """The tool flags this entry under its corpus name or its .pkl alias."""
        verdicts = [getattr(self, tool), getattr(self, f"{tool}_alias", None)]
        return any(v is not None and v.state == FLAGGED for v in verdicts)

    def cell(self, tool: str) -> str:
        main = getattr(self, tool)
        alias = getattr(self, f"{tool}_alias", None)
        text = main.state
        if alias is not None and alias.state != main.state:
            text += f" / .pkl: {alias.state}"
        if tool == "mlgate" and self.entry.policy:
            text += " †"
        return text

    def expected(self) -> str:
        return FLAGGED if self.entry.kind == "malicious" else CLEAN


def detect(entries: list[Entry], tools: Tools, scratch: Path, separate_processes: bool) -> list[Row]:
    """Every tool on every entry (and the .pkl aliases). By default each CLI's main() runs in-process
    (mlgate here, picklescan and modelscan in one process of their virtualenv); with
    `separate_processes`, one process per call, as a user would run them."""
    jobs: list[tuple[int, str, str, Path]] = []  # (entry index, column, tool, path)
    for i, e in enumerate(entries):
        jobs.append((i, "mlgate_cli_default" if e.policy else "mlgate", "mlgate", e.path))
        for tool in ("picklescan", "modelscan"):
            jobs.append((i, tool, tool, e.path))
            if e.alias:
                jobs.append((i, f"{tool}_alias", tool, e.alias))
    reports = {}  # job number -> modelscan's JSON report file
    argvs = []
    for n, (_, _, tool, path) in enumerate(jobs):
        if tool == "picklescan":
            argvs.append(["-p", str(path)])
        elif tool == "modelscan":
            reports[n] = scratch / f"modelscan-report-{n}.json"
            argvs.append(["-p", str(path), "-r", "json", "-o", str(reports[n])])
        else:
            argvs.append(mlgate_argv(path))

    calls: dict[int, Call] = {}
    if separate_processes:
        executables = {"mlgate": tools.mlgate, "picklescan": tools.picklescan, "modelscan": tools.modelscan}
        with ThreadPoolExecutor(2) as pool:
            futures = {
                n: pool.submit(_run, [executables[job[2]], *argvs[n]], tools) for n, job in enumerate(jobs)
            }
            calls = {n: f.result() for n, f in futures.items()}
    else:
        batch = [(n, [job[2], argvs[n]]) for n, job in enumerate(jobs) if job[2] != "mlgate"]
        result = subprocess.run(
            [tools.scanners_python, "-c", _SCANNERS_CLI],
            input=json.dumps([b for _, b in batch]),
            capture_output=True,
            text=True,
            env=tools.env,
            cwd=tools.cwd,
            timeout=1800,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"picklescan/modelscan batch failed: {result.stderr[-1000:]}")
        for (n, _), item in zip(batch, json.loads(result.stdout), strict=True):
            calls[n] = Call(item["rc"], item["out"], item["err"], item["seconds"])
        cwd = Path.cwd()
        os.chdir(tools.cwd)  # as the subprocesses: no mlgate.yaml is picked up
        try:
            for n, job in enumerate(jobs):
                if job[2] == "mlgate":
                    calls[n] = mlgate_in_process(job[3])
        finally:
            os.chdir(cwd)

    columns: dict[int, dict[str, Verdict]] = {i: {} for i in range(len(entries))}
    for n, (i, column, tool, path) in enumerate(jobs):
        if tool == "mlgate":
            verdict = mlgate_verdict(calls[n])
        elif tool == "picklescan":
            verdict = picklescan_verdict(calls[n], path)
        else:
            verdict = modelscan_verdict(calls[n], reports[n])
        columns[i][column] = verdict
    for i, e in enumerate(entries):
        if e.policy:
            columns[i]["mlgate"] = mlgate_with_policy(e.path, e.policy)
            columns[i]["mlgate"].said += f" [CLI, default limits: {columns[i]['mlgate_cli_default'].said}]"
    return [Row(e, **columns[i]) for i, e in enumerate(entries)]


# ---------------------------------------------------------------- per-call wall time


def timing(files: dict[str, Path], tools: Tools, repeat: int) -> dict[str, Any]:
    """Whole-process wall time per call: one warm-up each, then `repeat` interleaved rounds."""
    commands: dict[tuple[str, str], list[Any]] = {
        ("python -c pass (mlgate venv)", "-"): [tools.mlgate_python, "-c", "pass"],
        ("python -c pass (scanners venv)", "-"): [tools.scanners_python, "-c", "pass"],
    }
    for label, path in files.items():
        commands["mlgate", label] = [tools.mlgate, "scan-artifact", path]
        commands["picklescan", label] = [tools.picklescan, "-p", path]
        commands["modelscan", label] = [tools.modelscan, "-p", path]
    exit_codes = {}
    for key, argv in commands.items():  # warm-up: writes any bytecode still missing
        exit_codes[key] = _run(argv, tools).rc
    runs: dict[tuple[str, str], list[float]] = {k: [] for k in commands}
    cpu: dict[tuple[str, str], list[float]] = {k: [] for k in commands}
    rounds = []
    keys = list(commands)
    for r in range(repeat):
        before = load()
        start = time.perf_counter()
        order = keys[r % len(keys) :] + keys[: r % len(keys)]  # rotate the order round by round
        for key in order:
            call = _run(commands[key], tools)
            if call.rc != exit_codes[key]:
                raise RuntimeError(
                    f"{key}: exit {call.rc} after warm-up exit {exit_codes[key]}: {call.err[-300:]}"
                )
            runs[key].append(call.seconds)
            cpu[key].append(call.cpu_s)
        seconds = time.perf_counter() - start
        rounds.append({"round": r, "loadavg_before": before, "loadavg_after": load(), "seconds": seconds})
    cells = [
        {
            "tool": tool,
            "file": label,
            "exit_code": exit_codes[tool, label],
            "median_s": statistics.median(runs[tool, label]),
            "min_s": min(runs[tool, label]),
            "max_s": max(runs[tool, label]),
            "runs_s": [round(x, 4) for x in runs[tool, label]],
            "cpu_median_s": statistics.median(cpu[tool, label]),
            "cpu_runs_s": [round(x, 4) for x in cpu[tool, label]],
        }
        for tool, label in keys
    ]
    return {"repeat": repeat, "rounds": rounds, "cells": cells}


# ---------------------------------------------------------------- throughput


_SCANNERS_THROUGHPUT = r"""
import json, logging, sys, time, io, contextlib
logging.disable(logging.CRITICAL)
from picklescan.scanner import scan_file_path
from modelscan.modelscan import ModelScan
repeat, paths = int(sys.argv[1]), sys.argv[2:]
out = []
for path in paths:
    for tool in ("picklescan", "modelscan"):
        times, said = [], None
        for n in range(repeat + 1):  # the first run is a warm-up (lazy imports, page cache)
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                if tool == "picklescan":
                    r = scan_file_path(path)
                    said = {"issues": r.issues_count, "scan_err": r.scan_err,
                            "globals": sorted({f"{g.module}.{g.name}" for g in r.globals})[:8]}
                else:
                    r = ModelScan().scan(path)
                    said = {"issues": r["summary"]["total_issues"],
                            "scanned": r["summary"].get("scanned", {}).get("total_scanned", 0),
                            "errors": [str(e.get("description", e))[:200] for e in r["errors"]][:3]}
            if n:
                times.append(time.perf_counter() - start)
        out.append({"tool": tool, "path": path, "runs_s": times, "result": said})
print(json.dumps(out))
"""


def build_big_files(root: Path, big_mb: int, rf_trees: int) -> dict[str, Path]:
    import joblib
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    root.mkdir(parents=True, exist_ok=True)
    array = root / "array.joblib"
    joblib.dump({"X": np.random.default_rng(0).random(big_mb * MB // 8)}, array)
    X, y = make_classification(20_000, 5, n_informative=3, n_redundant=0, flip_y=0.3, random_state=0)
    forest = RandomForestClassifier(rf_trees, random_state=0, n_jobs=2).fit(X, y)
    rf = root / "random_forest.pkl"
    with rf.open("wb") as fh:
        pickle.dump(forest, fh)
    return {"joblib float64 array": array, "RandomForest pickle": rf}


def throughput(files: dict[str, Path], tools: Tools, repeat: int) -> list[dict[str, Any]]:
    rows = []
    for label, path in files.items():
        size = path.stat().st_size
        times, said = [], None
        scan_path(path, subject_identity="bench")  # warm-up: imports, page cache
        before = load()
        for _ in range(repeat):
            start = time.perf_counter()
            findings = scan_path(path, subject_identity="bench")
            times.append(time.perf_counter() - start)
            said = [f"{_finding_name(f.key, f.evidence)} ({f.severity.label})" for f in findings]
        rows.append(_throughput_row("mlgate", label, path, size, times, {"findings": said}, before))
    before = load()
    call = _run(
        [tools.scanners_python, "-c", _SCANNERS_THROUGHPUT, repeat, *files.values()], tools, timeout=900
    )
    after = load()
    if call.rc != 0:
        raise RuntimeError(f"scanners' throughput run failed: {call.err[-600:]}")
    labels = {str(p): label for label, p in files.items()}
    for item in json.loads(call.out):
        path = Path(item["path"])
        rows.append(
            _throughput_row(
                item["tool"],
                labels[item["path"]],
                path,
                path.stat().st_size,
                item["runs_s"],
                item["result"],
                before,
            )
        )
        rows[-1]["loadavg_after"] = after
    return rows


def _throughput_row(tool, label, path, size, times, said, before) -> dict[str, Any]:
    """MB/s only for a scan that read the file to its end: picklescan and modelscan stop at the first
    byte they cannot parse (a joblib file's raw array data), which is no throughput."""
    median = statistics.median(times)
    if tool == "picklescan":
        complete = not said["scan_err"]
    elif tool == "modelscan":
        complete = bool(said["scanned"]) and not said["errors"]
    else:
        complete = True
    return {
        "complete": complete,
        "tool": tool,
        "file": label,
        "name": path.name,
        "bytes": size,
        "median_s": median,
        "runs_s": [round(t, 4) for t in times],
        "mb_per_s": size / MB / median if median and complete else None,
        "result": said,
        "loadavg_before": before,
        "loadavg_after": load(),
    }


# ---------------------------------------------------------------- report


def environment(tools: Tools) -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "checks/artifact_scan", "mlgate"],
            capture_output=True,
            text=True,
        ).stdout
    except OSError:
        commit, dirty = "", ""
    return {
        **machine(),
        "commit": commit,
        # uncommitted changes under checks/artifact_scan and mlgate/ when the bench ran
        "uncommitted_scanner_or_cli_files": [line[3:] for line in dirty.splitlines() if line.strip()],
        "versions": tools.versions,
        "loadavg_start": load(),
    }


def _seconds(x: float) -> str:
    return f"{x:.3f}"


def detection_table(rows: list[Row], full: bool) -> list[str]:
    """One row per corpus entry. A cell in bold differs from the expected outcome. Compact: mlgate's
    worst finding; full: what each tool said (and under the .pkl name when that differs)."""
    last = "what they said (mlgate · picklescan · modelscan)" if full else "mlgate's worst finding"
    out = [
        f"| # | case (file) | expected | mlgate | picklescan | modelscan | {last} |",
        "|---:|---|---|---|---|---|---|",
    ]
    for n, row in enumerate(rows, 1):
        e = row.entry
        name = e.path.name + ("/" if e.is_dir else "")
        if full:
            saids = []
            for tool in TOOLS:
                said = getattr(row, tool).said
                alias = getattr(row, f"{tool}_alias", None)
                if alias is not None and alias.said != said:
                    said += f" [.pkl: {alias.said}]"
                saids.append(said)
            said = " · ".join(saids)
        else:
            said = (
                row.mlgate.said.split(" [CLI, default limits")[0].split("; ")[0]
                if row.flagged("mlgate")
                else ""
            )
            said = re.sub(r"^\[policy [^]]*\] ", "", said)
        marks = {t: ("**" if row.flagged(t) != (e.kind == "malicious") else "") for t in TOOLS}
        expected = f"malicious, {e.category} → flagged" if e.kind == "malicious" else "benign → clean"
        out.append(
            f"| {n} | `{e.id}` ({name}) | {expected} "
            + "".join(f"| {marks[t]}{row.cell(t)}{marks[t]} " for t in TOOLS)
            + f"| {said.replace('|', '/')} |"
        )
    return out


def summary(rows: list[Row]) -> dict[str, Any]:
    bad = [r for r in rows if r.entry.kind == "malicious"]
    good = [r for r in rows if r.entry.kind == "benign"]
    per_tool = {}
    for tool in TOOLS:
        states = [getattr(r, tool).state for r in rows]
        per_tool[tool] = {
            "malicious_flagged": sum(r.flagged(tool) for r in bad),
            "malicious_total": len(bad),
            "payload_flagged": sum(r.flagged(tool) for r in bad if r.entry.category == "payload"),
            "payload_total": sum(r.entry.category == "payload" for r in bad),
            "benign_flagged": sum(r.flagged(tool) for r in good),
            "benign_total": len(good),
            "errors": states.count(ERROR),
            "skipped": states.count(SKIPPED),
        }
    others = [r for r in bad if r.flagged("picklescan") or r.flagged("modelscan")]
    return {
        "per_tool": per_tool,
        "missed_by_mlgate_caught_by_others": [r.entry.id for r in others if not r.flagged("mlgate")],
        "caught_only_by_mlgate": [
            r.entry.id
            for r in bad
            if r.flagged("mlgate") and not (r.flagged("picklescan") or r.flagged("modelscan"))
        ],
        "mlgate_false_positives": [r.entry.id for r in good if r.flagged("mlgate")],
        "mlgate_missed": [r.entry.id for r in bad if not r.flagged("mlgate")],
        "picklescan_false_positives": [r.entry.id for r in good if r.flagged("picklescan")],
        "modelscan_false_positives": [r.entry.id for r in good if r.flagged("modelscan")],
    }


def timing_table(result: dict[str, Any]) -> list[str]:
    cells = {(c["tool"], c["file"]): c for c in result["cells"]}
    files = [f for t, f in cells if t == "mlgate"]
    out = [
        "| file | mlgate median (s) | picklescan median (s) | modelscan median (s) | mlgate / picklescan "
        "| goal mlgate <= picklescan | min mlgate / picklescan / modelscan (s) "
        "| CPU median mlgate / picklescan / modelscan (s) | exit codes |",
        "|---|---:|---:|---:|---:|---|---|---|---|",
    ]
    for f in files:
        m, p, s = cells["mlgate", f], cells["picklescan", f], cells["modelscan", f]
        ratio = m["median_s"] / p["median_s"]
        out.append(
            f"| {f} | {_seconds(m['median_s'])} | {_seconds(p['median_s'])} | {_seconds(s['median_s'])} "
            f"| {ratio:.2f} | {'met' if ratio <= 1 else 'NOT met'} "
            f"| {_seconds(m['min_s'])} / {_seconds(p['min_s'])} / {_seconds(s['min_s'])} "
            f"| {' / '.join(_seconds(c['cpu_median_s']) for c in (m, p, s))} "
            f"| {m['exit_code']} / {p['exit_code']} / {s['exit_code']} |"
        )
    for key in ("python -c pass (mlgate venv)", "python -c pass (scanners venv)"):
        c = cells[key, "-"]
        out.append(
            f"| `{key}` | {_seconds(c['median_s'])} | | | | | {_seconds(c['min_s'])} (min) "
            f"| {_seconds(c['cpu_median_s'])} | |"
        )
    return out


def throughput_table(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        "| file | size (MB) | tool | median (s) | MB/s | result | runs (s) |",
        "|---|---:|---|---:|---:|---|---|",
    ]
    for r in rows:
        result = r["result"]
        if r["tool"] == "mlgate":
            text = "clean" if not result["findings"] else "; ".join(result["findings"][:3])
        elif r["tool"] == "picklescan":
            text = f"{result['issues']} issue(s)" + (
                ", stopped at a parse error" if result["scan_err"] else ""
            )
        else:
            text = f"{result['issues']} issue(s), {result['scanned']} file(s) scanned"
            text += f", error: {result['errors'][0]}" if result["errors"] else ""
        rate = f"{r['mb_per_s']:,.1f}" if r["mb_per_s"] else "n/a"
        out.append(
            f"| {r['file']} ({r['name']}) | {r['bytes'] / MB:,.1f} | {r['tool']} | {r['median_s']:.3f} "
            f"| {rate} | {text.replace('|', '/')} "
            f"| {', '.join(f'{t:.3f}' for t in r['runs_s'])} |"
        )
    return out


def goals(summ: dict[str, Any], timed: dict[str, Any] | None) -> list[dict[str, str]]:
    out = []
    missed = summ["missed_by_mlgate_caught_by_others"]
    out.append(
        {
            "goal": "everything picklescan or modelscan flags, mlgate flags",
            "status": "met" if not missed else "NOT met",
            "figures": f"missed: {', '.join(missed) or 'none'}",
        }
    )
    only = summ["caught_only_by_mlgate"]
    out.append(
        {
            "goal": "plus the formats they miss (whole malicious corpus flagged)",
            "status": "met" if not summ["mlgate_missed"] else "NOT met",
            "figures": f"mlgate {summ['per_tool']['mlgate']['malicious_flagged']}/"
            f"{summ['per_tool']['mlgate']['malicious_total']}; {len(only)} flagged by mlgate only"
            + (f"; mlgate missed: {', '.join(summ['mlgate_missed'])}" if summ["mlgate_missed"] else ""),
        }
    )
    fps = summ["mlgate_false_positives"]
    out.append(
        {
            "goal": "no false positives on the benign set",
            "status": "met" if not fps else "NOT met",
            "figures": f"mlgate {len(fps)}/{summ['per_tool']['mlgate']['benign_total']}"
            + (f": {', '.join(fps)}" if fps else ""),
        }
    )
    if timed:
        cells = {(c["tool"], c["file"]): c for c in timed["cells"]}
        ratios = {
            f: cells["mlgate", f]["median_s"] / cells["picklescan", f]["median_s"]
            for t, f in cells
            if t == "mlgate"
        }
        out.append(
            {
                "goal": "at least as fast as picklescan per call (median wall time)",
                "status": "met" if all(r <= 1 for r in ratios.values()) else "NOT met",
                "figures": ", ".join(f"{f}: {r:.2f}" for f, r in ratios.items()),
            }
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="picklescan/modelscan virtualenv")
    parser.add_argument("--repeat", type=int, default=11, help="timed rounds for the per-call wall time")
    parser.add_argument("--big-mb", type=int, default=200, help="size of the joblib array (MB)")
    parser.add_argument("--rf-trees", type=int, default=150, help="trees in the large RandomForest")
    parser.add_argument("--throughput-repeat", type=int, default=3)
    parser.add_argument(
        "--separate-processes",
        action="store_true",
        help="detection: one process per call (slow: 1-3 s a call here), not each CLI's main() in-process",
    )
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results_artifact_scan.json")
    parser.add_argument("--markdown", type=Path, default=REPO / "bench" / "out" / "artifact_scan.md")
    args = parser.parse_args()

    started = time.perf_counter()
    scanners_python = ensure_scanners(args.venv)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "MLGATE_POLICY")}
    with tempfile.TemporaryDirectory(prefix="mlgate-bench-artifacts-") as tmp:
        root = Path(tmp)
        (root / "cwd").mkdir()
        bindir = Path(sys.executable).parent
        tools = Tools(
            mlgate=bindir / "mlgate",
            mlgate_python=Path(sys.executable),
            scanners_python=scanners_python,
            picklescan=scanners_python.parent / "picklescan",
            modelscan=scanners_python.parent / "modelscan",
            versions={
                **_versions(Path(sys.executable), ["mlgate", "numpy", "scikit-learn", "joblib", "skops"]),
                **_versions(scanners_python, ["picklescan", "modelscan", "numpy"]),
            },
            env=env,
            cwd=root / "cwd",
        )
        tools.versions["numpy (scanners venv)"] = tools.versions.pop("numpy")
        tools.versions.update(_versions(Path(sys.executable), ["numpy"]))
        info = environment(tools)
        info["scanners_venv"] = {"path": str(args.venv), "packages": _freeze(scanners_python)}
        print(json.dumps(info, indent=2), flush=True)
        bytecode = compile_bytecode(tools)

        t0 = time.perf_counter()
        entries = build_corpus(root / "corpus")
        print(f"\ncorpus: {len(entries)} entries built in {time.perf_counter() - t0:.1f}s", flush=True)

        t0 = time.perf_counter()
        load_before = load()
        rows = detect(entries, tools, root, args.separate_processes)
        detection_s = time.perf_counter() - t0
        print(f"detection: {detection_s:.1f}s (loadavg {load_before} -> {load()})", flush=True)
        canaries = [str(e.canary) for e in entries if e.canary.exists()]

        timing_dir = root / "timing"
        timing_dir.mkdir()
        by_id = {e.id: e for e in entries}
        evil = timing_dir / "evil.pkl"
        evil.write_bytes(pickled(SystemCanary(timing_dir / "CANARY"), 4))
        models = timing_dir / "models.pkl"
        shutil.copy(by_id["sklearn-pickle-p5"].path, models)
        joblib_file = timing_dir / "model.joblib"
        shutil.copy(by_id["joblib-plain"].path, joblib_file)
        timing_files = {
            f"malicious pickle ({evil.name}, {_size(evil):,} B)": evil,
            f"sklearn estimators pickle ({models.name}, {_size(models):,} B)": models,
            f"joblib, plain ({joblib_file.name}, {_size(joblib_file):,} B)": joblib_file,
        }
        t0 = time.perf_counter()
        timed = timing(timing_files, tools, args.repeat)
        timing_s = time.perf_counter() - t0
        bytecode["missing_after_warmup"] = probe_bytecode(tools, models)
        print(
            f"per-call timing: {timing_s:.1f}s; bytecode missing: {bytecode['missing_after_warmup']}",
            flush=True,
        )
        if (timing_dir / "CANARY").exists():
            canaries.append(str(timing_dir / "CANARY"))

        through, throughput_s = [], 0.0
        if not args.skip_throughput:
            t0 = time.perf_counter()
            big = build_big_files(root / "big", args.big_mb, args.rf_trees)
            built_s = time.perf_counter() - t0
            through = throughput(big, tools, args.throughput_repeat)
            throughput_s = time.perf_counter() - t0
            print(f"throughput: {throughput_s:.1f}s (big files built in {built_s:.1f}s)", flush=True)

    summ = summary(rows)
    goal_rows = goals(summ, timed)
    md = ["| goal | status | figures |", "|---|---|---|"]
    md += [f"| {g['goal']} | {g['status']} | {g['figures']} |" for g in goal_rows]
    md += ["", "| tool | malicious flagged | of which payload | benign flagged | errors | skipped |"]
    md += ["|---|---:|---:|---:|---:|---:|"]
    for tool, s in summ["per_tool"].items():
        md.append(
            f"| {tool} | {s['malicious_flagged']}/{s['malicious_total']} | {s['payload_flagged']}/"
            f"{s['payload_total']} | {s['benign_flagged']}/{s['benign_total']} "
            f"| {s['errors']} | {s['skipped']} |"
        )
    md += ["", *detection_table(rows, full=False), "", *timing_table(timed)]
    if through:
        md += ["", *throughput_table(through)]
    md += ["", "What each tool said:", "", *detection_table(rows, full=True)]
    total_s = time.perf_counter() - started
    text = "\n".join(md)
    print("\n" + text)
    print(f"\ntotal {total_s:.0f}s; loadavg at the end {load()}")
    if canaries:
        print(f"\nERROR: canaries appeared: {canaries}")

    result = {
        "environment": info,
        "finished": now(),
        "loadavg_end": load(),
        "seconds": {
            "total": round(total_s, 1),
            "detection": round(detection_s, 1),
            "timing": round(timing_s, 1),
            "throughput": round(throughput_s, 1),
        },
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "bytecode": bytecode,
        "goals": goal_rows,
        "summary": summ,
        "canaries_appeared": canaries,
        "detection": [
            {
                "id": r.entry.id,
                "kind": r.entry.kind,
                "category": r.entry.category,
                "expected": r.expected(),
                "name": r.entry.path.name,
                "bytes": r.entry.bytes,
                "policy": r.entry.policy,
                **{
                    name: asdict(v) if v is not None else None
                    for name in (*TOOLS, "picklescan_alias", "modelscan_alias", "mlgate_cli_default")
                    for v in [getattr(r, name)]
                },
            }
            for r in rows
        ],
        "timing": timed,
        "throughput": through,
        "markdown": md,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text + "\n")
    failed = (
        summ["missed_by_mlgate_caught_by_others"] or summ["mlgate_false_positives"] or summ["mlgate_missed"]
    )
    return 1 if failed or canaries else 0


if __name__ == "__main__":
    raise SystemExit(main())
