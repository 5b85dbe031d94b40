"""The static artifact scanner: the canary corpus is flagged with the right severity and evidence,
benign artifacts written by the real libraries are clean, limits and tricks become findings, and
nothing scanned is ever loaded (the canary never appears, the canary module is never imported)."""

from __future__ import annotations

import os
import pickle
import pickletools
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from checks.artifact_scan import ScanPolicy, scan_bytes, scan_path
from checks.artifact_scan.rules import classify_name
from checks.findings import Finding, Severity
from tests.artifact_corpus import (
    EMPTY_TUPLE,
    PROTO,
    REDUCE,
    STOP,
    SystemCanary,
    TeamModel,
    glob,
    pickled,
    write,
    zip_bytes,
)
from tests.artifact_corpus_cases import BENIGN, MALICIOUS

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def canary(tmp_path: Path):
    path = tmp_path / "CANARY"
    yield path
    assert not path.exists(), "a scanned payload ran"


def _matches(finding: Finding, what: str) -> bool:
    if "." not in what:  # a kind of finding (its key), not an imported name
        return finding.key.startswith(what)
    return finding.evidence.get("global") == what


@pytest.mark.parametrize("case", MALICIOUS, ids=lambda c: c.id)
def test_malicious_corpus_is_flagged(case, tmp_path: Path, canary: Path) -> None:
    target = case.build(tmp_path, canary)
    policy = ScanPolicy.from_mapping(case.policy) if case.policy else None
    findings = scan_path(target, policy=policy, subject_identity="m", subject={"model": "m"})
    assert findings, f"{case.id}: nothing found"
    for expect in case.expect:
        found = [f for f in findings if _matches(f, expect.what)]
        assert found, (
            f"{case.id}: no finding for {expect.what}; got {[(f.key, f.severity.label) for f in findings]}"
        )
        f = found[0]
        assert f.severity.label == expect.severity, (case.id, f.key, f.severity.label)
        if expect.format:
            assert expect.format in f.evidence["format"], (case.id, f.evidence["format"])
        if expect.member:
            assert f.evidence["member"] == expect.member, (case.id, f.evidence["member"])
        if expect.invoked is not None:
            assert f.evidence["invoked"] is expect.invoked
        assert f.check == "artifact_safety" and f.taxonomy["owasp_ml"] == "ML06:2023"
        assert f.taxonomy["atlas"] == ("AML.T0011" if f.severity == Severity.CRITICAL else "AML.T0010") or (
            f.severity == Severity.CRITICAL and f.key.startswith(("limit", "unparseable"))
        )
        assert f.remediation and f.subject == {"model": "m"}
        assert set(f.evidence) >= {"file", "member", "offset", "format"}
        assert str(tmp_path) not in f.key  # fingerprint keys never hold paths
    worst = max(Severity.parse(e.severity) for e in case.expect)
    assert max(f.severity for f in findings) == worst


@pytest.mark.parametrize("case", BENIGN, ids=lambda c: c.id)
def test_benign_artifacts_are_clean(case, tmp_path: Path, canary: Path) -> None:
    target = case.build(tmp_path, canary)
    findings = scan_path(target, subject_identity="m")
    assert [(f.key, f.severity.label, f.title) for f in findings if f.severity > Severity.INFO] == []


def test_offsets_point_at_the_importing_opcode_and_all_occurrences_are_listed(canary: Path) -> None:
    data = pickled([SystemCanary(canary), SystemCanary(canary.with_name("OTHER"))], 2)
    offsets = [pos for op, _, pos in pickletools.genops(data) if op.name == "GLOBAL"]
    [finding] = scan_bytes(data, name="m.pkl", subject_identity="m")
    assert finding.evidence["global"] == "posix.system"
    assert finding.evidence["offset"] == offsets[0]
    assert finding.evidence["offsets"] == offsets[:1]  # the second one comes from the memo: one import
    assert finding.evidence["occurrences"] == 1


def test_one_finding_per_global_and_member_with_a_stable_fingerprint(tmp_path: Path, canary: Path) -> None:
    payload = pickled(SystemCanary(canary))
    archive = zip_bytes({"a/data.pkl": payload, "b/data.pkl": payload})
    first = scan_path(write(tmp_path / "x" / "one.pt", archive), subject_identity="m")
    moved = scan_path(write(tmp_path / "elsewhere" / "renamed.pt", archive), subject_identity="m")
    assert sorted(f.evidence["member"] for f in first) == ["a/data.pkl", "b/data.pkl"]
    assert [f.fingerprint for f in first] == [f.fingerprint for f in moved]
    both = write(tmp_path / "dir" / "p1.pkl", payload), write(tmp_path / "dir" / "p2.pkl", payload)
    [finding] = scan_path(tmp_path / "dir", subject_identity="m")
    assert [loc["file"] for loc in finding.evidence["locations"]] == [str(p) for p in both]
    assert finding.fingerprint != scan_path(both[0], subject_identity="other")[0].fingerprint


def test_denylist_wins_over_the_policy_allowlist_which_extends_the_builtin_one(canary: Path) -> None:
    team = pickled(TeamModel(), 4)
    assert scan_bytes(team, name="m.pkl", subject_identity="m")[0].severity == Severity.HIGH
    policy = ScanPolicy(allow=frozenset({"tests.artifact_corpus.TeamModel"}))
    assert scan_bytes(team, name="m.pkl", policy=policy, subject_identity="m") == []
    evil = PROTO(2) + glob("os", "system") + EMPTY_TUPLE + REDUCE + STOP
    policy = ScanPolicy(allow=frozenset({"os.system", "posix.system"}))
    assert scan_bytes(evil, policy=policy, subject_identity="m")[0].severity == Severity.CRITICAL
    with pytest.raises(ValueError, match="exact dotted names"):
        ScanPolicy(allow=frozenset({"sklearn.*"}))
    with pytest.raises(ValueError, match="unknown artifact scan settings"):
        ScanPolicy.from_mapping({"max_dpeth": 3})


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("sklearn.linear_model._logistic.LogisticRegression", "allow"),
        ("sklearn.tree._tree.Tree", "allow"),
        ("numpy.random._pickle.__randomstate_ctor", "allow"),  # a submodule called _pickle is fine
        ("pandas.core.internals.managers.BlockManager", "allow"),
        ("pandas.io.pickle.read_pickle", "deny"),
        ("numpy.lib._npyio_impl.load", "deny"),
        ("sklearn.base.os.system", "deny"),
        ("builtins.object.__subclasses__", "deny"),
        ("__builtin__.eval", "deny"),
        ("commands.getoutput", "deny"),  # Python 2 name, fixed to subprocess by pickle
        ("pandas.ExcelWriter", "unknown"),  # writes files: not on the allowlist
        ("sklearn", "unknown"),
    ],
)
def test_rules_tables(name: str, status: str) -> None:
    assert classify_name(name).status == status


def test_no_allowlist_entry_is_also_denied() -> None:
    from checks.artifact_scan._generated_allowlist import GENERATED
    from checks.artifact_scan.rules import ALLOW

    assert [n for n in sorted(ALLOW | GENERATED) if classify_name(n).status != "allow"] == []


def test_symlinks_fifos_and_sockets_are_reported_and_never_opened(tmp_path: Path, canary: Path) -> None:
    root = tmp_path / "model"
    write(root / "MLmodel", b"flavors: {}\n")
    outside = write(tmp_path / "outside.pkl", pickled(SystemCanary(canary)))
    (root / "model.pkl").symlink_to(outside)
    os.mkfifo(root / "pipe")  # opening it for reading would block forever
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "sock"))
    try:
        findings = {f.key: f for f in scan_path(root, subject_identity="m")}
    finally:
        server.close()
    assert findings["symlink|"].severity == Severity.HIGH
    assert findings["special_file|"].severity == Severity.HIGH
    assert len(findings["special_file|"].evidence["locations"]) == 2
    assert not any("posix.system" in key for key in findings)  # the link target was not read
    [link] = scan_path(root / "model.pkl", subject_identity="m")
    assert link.key == "symlink|"


def test_a_missing_path_raises_and_an_unreadable_file_is_a_finding(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        scan_path(tmp_path / "nope", subject_identity="m")
    locked = write(tmp_path / "d" / "model.pkl", b"\x80\x04N.")
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as root: permissions are not enforced")
        [finding] = scan_path(tmp_path / "d", subject_identity="m")
        assert finding.key == "unreadable|" and finding.severity == Severity.HIGH
    finally:
        locked.chmod(0o600)


def test_a_bad_crc_zip_that_zipfile_refuses_is_still_read(tmp_path: Path, canary: Path) -> None:
    from tests.artifact_corpus import break_crcs

    data = break_crcs(zip_bytes({"archive/data.pkl": pickled(SystemCanary(canary))}, zipfile.ZIP_DEFLATED))
    path = write(tmp_path / "m.pt", data)
    with zipfile.ZipFile(path) as zf, pytest.raises(zipfile.BadZipFile):
        zf.read("archive/data.pkl")
    assert scan_path(path, subject_identity="m")[0].evidence["global"] == "posix.system"


def test_a_pickle_naming_a_module_that_runs_code_on_import_is_not_imported(
    tmp_path: Path, monkeypatch
) -> None:
    marker = tmp_path / "IMPORTED"
    write(
        tmp_path / "lib" / "mlgate_canary_mod.py",
        f"open({str(marker)!r}, 'w').close()\nclass M: pass\n".encode(),
    )
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    data = PROTO(2) + glob("mlgate_canary_mod", "M") + EMPTY_TUPLE + REDUCE + STOP
    [finding] = scan_bytes(data, subject_identity="m")
    assert finding.evidence["global"] == "mlgate_canary_mod.M" and finding.severity == Severity.HIGH
    assert not marker.exists() and "mlgate_canary_mod" not in sys.modules


def test_text_files_that_start_like_pickles_are_clean() -> None:
    for text in (b"cloudpickle\nnumpy\npandas\n", b"channels:\n- conda-forge\n", b"(1, 2)\n", b"I am text\n"):
        assert scan_bytes(text, name="requirements.txt", subject_identity="m") == [], text


def test_findings_serialise_to_strict_json(canary: Path) -> None:
    import json

    for f in scan_bytes(pickled(SystemCanary(canary), 0), name="m.pkl", subject_identity="m"):
        json.loads(json.dumps(f.to_dict(), allow_nan=False))


def test_the_scanner_imports_only_the_standard_library() -> None:
    code = (
        "import sys, checks.artifact_scan\n"
        "heavy = {'numpy', 'pandas', 'sklearn', 'skops', 'yaml', 'mlflow', 'dagster', 'joblib', 'scipy'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_pickle_module_is_never_used_to_load(monkeypatch, tmp_path: Path, canary: Path) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the scanner unpickled something")

    for name in ("load", "loads", "Unpickler", "_Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    scan_bytes(pickled(SystemCanary(canary)), name="m.pkl", subject_identity="m")
    scan_path(MALICIOUS[-1].build(tmp_path, canary), subject_identity="m")
