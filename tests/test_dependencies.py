"""Dependency advisories: environment parsing, OSV matching, the database and its update."""

from __future__ import annotations

import copy
import http.server
import json
import threading
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from checks.advisories import (
    METADATA,
    SAMPLE_DATABASE,
    AdvisoryDatabase,
    DatabaseUnavailable,
    UpdateError,
    affects,
    cvss3_base_score,
    open_database,
    read_info,
    record_severity,
    to_advisory,
    update,
)
from checks.detectors.dependencies import check_dependencies, read_environment, scan_dependencies
from checks.findings import Finding, Severity

SHARED = Path(__file__).parents[2] / "shared" / "data"
SHARED_ZIP = SHARED / "osv-pypi-pypa-2024-10-10.zip"
needs_shared = pytest.mark.skipif(
    not SHARED_ZIP.is_file(), reason=f"shared OSV snapshot not present at {SHARED_ZIP} (fresh clone)"
)
NOW = datetime(2024, 10, 20, tzinfo=UTC)  # ten days after the sample's snapshot: fresh


def record(advisory_id: str) -> dict:
    return json.loads((SAMPLE_DATABASE / f"{advisory_id}.json").read_text())


@pytest.fixture(scope="module")
def sample() -> Iterator[AdvisoryDatabase]:
    with open_database(SAMPLE_DATABASE) as db:
        yield db


def model(tmp_path: Path, files: dict[str, str]) -> Path:
    """An MLflow-style model directory holding `files` (name -> text)."""
    root = tmp_path / "model"
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def scan(root: Path, db: AdvisoryDatabase | None, **kwargs) -> dict[str, Finding]:
    kwargs.setdefault("now", NOW)
    found = scan_dependencies(root, db, subject_identity="m", **kwargs)
    keys = [f.key for f in found]
    assert len(keys) == len(set(keys)), "one finding per key"
    for f in found:
        json.dumps(f.to_dict(), allow_nan=False)
        assert f.check == "dependency_advisories"
        assert f.taxonomy == {"owasp_ml": "ML06:2023", "atlas": "AML.T0010.001"}
    return {f.key: f for f in found}


# -- matching OSV records ------------------------------------------------------------------------


def test_ecosystem_ranges_with_several_intervals_and_last_affected() -> None:
    pillow = record("PYSEC-2014-10")  # introduced 0 / fixed 2.3.2, introduced 2.5 / fixed 2.5.2
    assert affects(pillow, "Pillow", "2.3.1")
    assert not affects(pillow, "pillow", "2.3.2")
    assert not affects(pillow, "pillow", "2.4.0")
    assert affects(pillow, "pillow", "2.5.1")
    assert not affects(pillow, "pillow", "2.5.2")
    py = record("PYSEC-2022-42969")  # introduced 0 / last_affected 1.11.0
    assert affects(py, "py", "1.11.0") and affects(py, "py", "1.4.0")
    assert not affects(py, "py", "1.11.1")
    numpy = record("PYSEC-2021-854")  # introduced 1.9.0 / fixed 1.10.0
    assert not affects(numpy, "numpy", "1.8.2")
    assert affects(numpy, "numpy", "1.9.3")
    assert not affects(numpy, "numpy", "1.10.0")
    assert affects(record("PYSEC-2020-107"), "scikit-learn", "0.23.1rc1"), "pre-releases before the fix"
    assert affects(record("PYSEC-2022-43015"), "torch", "1.12.0+cu113"), "local labels compare by release"
    assert not affects(record("PYSEC-2020-107"), "numpy", "0.1"), "other packages never match"


def test_git_ranges_are_skipped_and_explicit_versions_count() -> None:
    joblib = record("PYSEC-2022-288")  # a GIT range (commit hashes) beside the ECOSYSTEM one
    assert [r["type"] for r in joblib["affected"][0]["ranges"]] == ["GIT", "ECOSYSTEM"]
    assert affects(joblib, "joblib", "1.1.0")
    assert not affects(joblib, "joblib", "1.2.0")
    git_only = copy.deepcopy(joblib)
    git_only["affected"][0]["ranges"] = [joblib["affected"][0]["ranges"][0]]
    git_only["affected"][0]["versions"] = []
    assert not affects(git_only, "joblib", "1.1.0"), "a GIT range alone never matches a release"
    listed = copy.deepcopy(git_only)
    listed["affected"][0]["versions"] = ["1.1.0"]
    assert affects(listed, "joblib", "1.1.0") and affects(listed, "joblib", "1.1")
    assert not affects(listed, "joblib", "1.1.1")


def test_withdrawn_records_are_ignored(sample: AdvisoryDatabase) -> None:
    redis = record("PYSEC-2023-73")  # withdrawn; introduced 0 with no fix would match every release
    assert redis["withdrawn"]
    assert not affects(redis, "redis", "4.0.0")
    assert sample.query("redis", "4.0.0") == []
    assert sample.query("loguru", "0.5.3") == []
    unwithdrawn = {k: v for k, v in redis.items() if k != "withdrawn"}
    assert affects(unwithdrawn, "redis", "4.0.0")


def test_severity_from_record() -> None:
    assert record_severity(record("PYSEC-2023-252")) == (Severity.HIGH, "CVSS_V3:7.5")
    assert record_severity(record("PYSEC-2023-260")) == (Severity.MEDIUM, "CVSS_V3:6.1")
    assert record_severity(record("PYSEC-2020-107")) == (Severity.HIGH, "default")  # no severity given
    ghsa = record("PYSEC-2020-107") | {"database_specific": {"severity": "MODERATE"}}
    assert record_severity(ghsa)[0] is Severity.MEDIUM
    assert cvss3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") == 9.8
    assert cvss3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H") == 10.0
    assert cvss3_base_score("CVSS:3.0/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N") == 1.8
    assert cvss3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N") == 0.0
    assert cvss3_base_score("AV:N/AC:L/Au:N/C:P/I:P/A:P") is None


def test_default_severity_is_high_for_unknown(tmp_path: Path) -> None:
    records = tmp_path / "records"
    records.mkdir()
    bare = {k: v for k, v in record("PYSEC-2023-252").items() if k != "severity"}
    (records / "r.json").write_text(json.dumps(bare))
    with open_database(records) as db:
        [advisory] = db.query("mlflow", "2.0.0")
        env = read_environment(model(tmp_path, {"requirements.txt": "mlflow==2.0.0\n"}))
        found = check_dependencies(env, db, subject_identity="m")
    assert advisory.severity is Severity.HIGH and advisory.severity_source == "default"
    assert found[0].key == "advisory:mlflow:PYSEC-2023-252"
    assert found[0].evidence["fixed"] == ["2.9.2"]


# -- findings -------------------------------------------------------------------------------------


def test_vulnerable_pin_flagged_with_advisory_and_fixed_pin_clean(tmp_path: Path, sample) -> None:
    found = scan(
        model(tmp_path / "a", {"requirements.txt": "Scikit_Learn==0.22.2\nmlflow==2.10.1\n"}), sample
    )
    hit = found["advisory:scikit-learn:PYSEC-2020-107"]
    assert hit.severity is Severity.HIGH
    assert "CVE-2020-13092" in hit.title
    assert hit.evidence["package"] == "scikit-learn" and hit.evidence["version"] == "0.22.2"
    assert hit.evidence["advisory"] == "PYSEC-2020-107"
    assert hit.evidence["aliases"] == ["CVE-2020-13092"]
    assert hit.evidence["fixed"] == ["0.23.1"] and hit.evidence["file"] == "requirements.txt"
    assert "0.23.1" in hit.remediation
    assert not [k for k in found if k.startswith("advisory:mlflow")], "2.10.1 is the last fix in the sample"

    fixed = scan(
        model(tmp_path / "b", {"requirements.txt": "scikit-learn==0.24.2\nmlflow==2.10.1\n"}), sample
    )
    assert not [k for k in fixed if k.startswith(("advisory:", "unpinned:"))]


def test_fingerprint_is_package_and_advisory_not_file_or_version(tmp_path: Path, sample) -> None:
    a = scan(model(tmp_path / "a", {"requirements.txt": "scikit-learn==0.22.2\n"}), sample)
    b = scan(model(tmp_path / "b", {"conda.yaml": "dependencies:\n- scikit-learn=0.23.0\n"}), sample)
    key = "advisory:scikit-learn:PYSEC-2020-107"
    assert a[key].fingerprint == b[key].fingerprint
    assert b[key].evidence["file"] == "conda.yaml"


def test_unpinned_requirements(tmp_path: Path, sample) -> None:
    files = {
        "requirements.txt": "numpy>=1.20\npandas\nscipy==1.10.*\nrequests==2.31.0 --hash=sha256:0123\n",
        "python_env.yaml": "python: 3.11.9\nbuild_dependencies: [pip==24.0, setuptools, wheel==0.43.0]\n"
        "dependencies: [-r requirements.txt]\n",
    }
    found = scan(model(tmp_path, files), sample)
    assert found["unpinned:numpy"].severity is Severity.MEDIUM
    assert found["unpinned:numpy"].evidence["where"][0]["text"] == "numpy>=1.20"
    assert "unpinned:pandas" in found
    assert "unpinned:scipy" in found, "a wildcard is not an exact pin"
    assert found["unpinned:setuptools"].severity is Severity.LOW, "build tooling"
    assert "unpinned:requests" not in found and "unpinned:pip" not in found
    assert not any(f.severity >= Severity.HIGH for f in found.values()), "governance gaps never block"


CONDA = """
channels: [conda-forge]
dependencies:
- python=3.11.9
- pip<=24.0
- pytorch=1.12.0
- conda-forge::scipy==1.7.0=py39h1234
- numpy 1.21.0 py39_0
- pandas[version='>=2']
- pip:
  - mlflow==2.0.0
  - cloudpickle==3.0.0
name: mlflow-env
"""


def test_conda_yaml_specs_and_nested_pip(tmp_path: Path, sample) -> None:
    root = model(tmp_path, {"conda.yaml": CONDA})
    env = read_environment(root)
    assert not env.problems
    assert {r.name: r.version for r in env.requirements} == {
        "pip": None,
        "torch": "1.12.0",
        "scipy": "1.7.0",
        "numpy": "1.21.0",
        "pandas": None,
        "mlflow": "2.0.0",
        "cloudpickle": "3.0.0",
    }
    found = scan(root, sample)
    assert "advisory:torch:PYSEC-2022-43015" in found, "conda's pytorch is PyPI's torch"
    assert "advisory:scipy:PYSEC-2023-102" in found
    assert "advisory:mlflow:PYSEC-2023-252" in found
    assert found["advisory:mlflow:PYSEC-2023-260"].severity is Severity.MEDIUM
    assert found["unpinned:pip"].severity is Severity.LOW
    assert found["unpinned:pandas"].severity is Severity.MEDIUM


def test_python_env_yaml_includes_and_constraints(tmp_path: Path, sample) -> None:
    files = {
        "python_env.yaml": "build_dependencies: [pip==21.0]\ndependencies: [-r reqs/base.txt]\n",
        "reqs/base.txt": "-c ../constraints.txt\nnumpy\nscikit-learn==0.22.2\n",
        "constraints.txt": "numpy==1.19.0\n",
    }
    root = model(tmp_path, files)
    assert read_environment(root).files == ["python_env.yaml", "reqs/base.txt", "constraints.txt"]
    found = scan(root, sample)
    assert "advisory:pip:PYSEC-2021-437" in found, "build dependencies are checked too"
    assert "advisory:scikit-learn:PYSEC-2020-107" in found
    assert "advisory:numpy:PYSEC-2021-856" in found, "a constraint pins numpy"
    assert "unpinned:numpy" not in found


def test_build_tool_advisories_stay_below_the_blocking_line(tmp_path: Path, sample) -> None:
    files = {"python_env.yaml": "build_dependencies: [pip==24.0, setuptools==65.5.0, wheel==0.38.0]\n"}
    found = scan(model(tmp_path, files), sample)
    setuptools = found["advisory:setuptools:PYSEC-2022-43012"]  # MLflow's own default pin in this venv
    assert setuptools.severity is Severity.MEDIUM
    assert setuptools.evidence["record_severity"] == "high" and setuptools.evidence["build_tool"]
    assert found["advisory:wheel:PYSEC-2022-43017"].severity is Severity.MEDIUM
    served = scan(model(tmp_path / "b", {"requirements.txt": "setuptools==65.5.0\nflask==2.0\n"}), sample)
    assert served["advisory:setuptools:PYSEC-2022-43012"].severity is Severity.MEDIUM, "pip/setuptools/wheel"


def test_same_package_in_several_files_is_one_finding(tmp_path: Path, sample) -> None:
    files = {
        "requirements.txt": "mlflow==2.0.0\n",
        "conda.yaml": "dependencies:\n- pip:\n  - mlflow==2.1.0\n",
        "python_env.yaml": "dependencies: [-r requirements.txt]\n",
    }
    hit = scan(model(tmp_path, files), sample)["advisory:mlflow:PYSEC-2023-252"]
    assert hit.evidence["versions"] == ["2.0.0", "2.1.0"]
    assert {p["file"] for p in hit.evidence["pins"]} == {"requirements.txt", "conda.yaml"}


@pytest.mark.parametrize(
    ("files", "bad_file"),
    [
        ({"conda.yaml": "dependencies: [numpy==1.0\n  - : :"}, "conda.yaml"),
        ({"conda.yaml": "- numpy\n"}, "conda.yaml"),
        ({"conda.yaml": "dependencies:\n- {pip: oops}\n"}, "conda.yaml"),
        ({"python_env.yaml": "dependencies: numpy==1.0\n"}, "python_env.yaml"),
        ({"python_env.yaml": "dependencies:\n- 3\n"}, "python_env.yaml"),
        ({"requirements.txt": "numpy===\nscikit-learn==0.22.2\n"}, "requirements.txt"),
        ({"requirements.txt": "--frobnicate\nscikit-learn==0.22.2\n"}, "requirements.txt"),
        ({"requirements.txt": "-r ../../outside.txt\nscikit-learn==0.22.2\n"}, "requirements.txt"),
        ({"requirements.txt": "-r /etc/passwd\nscikit-learn==0.22.2\n"}, "requirements.txt"),
        ({"requirements.txt": "-r missing.txt\nscikit-learn==0.22.2\n"}, "requirements.txt"),
        ({"requirements.txt": "-r https://example.com/r.txt\nscikit-learn==0.22.2\n"}, "requirements.txt"),
    ],
)
def test_malformed_files_are_blocking_findings_not_crashes(tmp_path, sample, files, bad_file) -> None:
    found = scan(model(tmp_path, files), sample)
    bad = found[f"unreadable:{bad_file}"]
    assert bad.severity is Severity.HIGH
    assert bad.evidence["problems"] and bad.evidence["problem_count"] >= 1
    if "scikit-learn" in next(iter(files.values())):
        assert "advisory:scikit-learn:PYSEC-2020-107" in found, "the rest of the file is still checked"


def test_binary_and_oversized_files(tmp_path: Path, sample) -> None:
    root = model(tmp_path, {"conda.yaml": "dependencies:\n" + "- numpy==1.0\n" * 100_000})
    (root / "requirements.txt").write_bytes(b"\xff\xfe\x00garbage\x80")
    found = scan(root, sample)
    assert found["unreadable:requirements.txt"].severity is Severity.HIGH
    assert "larger than" in found["unreadable:conda.yaml"].title


def test_yaml_alias_bomb_is_bounded(tmp_path: Path, sample) -> None:
    items = ", ".join(["numpy==1.0"] * 1000)
    refs = "\n".join(["- pip: *a"] * 1000)  # a million entries once the aliases are followed
    found = scan(model(tmp_path, {"conda.yaml": f"x: &a [{items}]\ndependencies:\n{refs}\n"}), sample)
    assert "more than" in found["unreadable:conda.yaml"].title


def test_symlink_out_of_the_model_is_refused(tmp_path: Path, sample) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("scikit-learn==0.22.2\n")
    root = model(tmp_path, {})
    (root / "requirements.txt").symlink_to(outside)
    found = scan(root, sample)
    assert "outside the model directory" in found["unreadable:requirements.txt"].title
    assert "advisory:scikit-learn:PYSEC-2020-107" not in found


REQUIREMENTS = """# comment
--index-url https://pypi.org/simple
--extra-index-url https://user:s3cret@pkgs.example.com/simple
--trusted-host pkgs.example.com
git+https://github.com/org/repo.git@abc123#egg=mylib
mytool @ https://tok3n@files.example.com/mytool-1.0.tar.gz
-e .
scikit-learn==1.5.0 \\
    --hash=sha256:0123
"""


def test_direct_references_and_package_sources(tmp_path: Path, sample) -> None:
    found = scan(model(tmp_path, {"requirements.txt": REQUIREMENTS}), sample)
    assert found["package_source:--extra-index-url:pkgs.example.com"].severity is Severity.MEDIUM
    assert "package_source:--trusted-host:pkgs.example.com" in found
    assert not [k for k in found if "pypi.org" in k], "the default index is not a finding"
    assert found["direct_reference:mylib"].severity is Severity.MEDIUM
    assert "direct_reference:mytool" in found and "direct_reference:." in found
    shown = json.dumps([f.to_dict() for f in found.values()])
    assert "s3cret" not in shown and "tok3n" not in shown, "credentials are redacted"
    assert "unpinned:scikit-learn" not in found


def test_no_environment_files(tmp_path: Path, sample) -> None:
    found = scan(model(tmp_path, {"MLmodel": "flavors: {}\n"}), sample)
    assert list(found) == ["no_environment"] and found["no_environment"].severity is Severity.MEDIUM


# -- the database's own state ---------------------------------------------------------------------


def test_stale_snapshot_is_a_low_finding(tmp_path: Path, sample) -> None:
    root = model(tmp_path, {"requirements.txt": "scikit-learn==1.5.0\n"})
    later = datetime(2025, 1, 1, tzinfo=UTC)
    stale = scan(root, sample, now=later)["advisory_database_stale"]
    assert stale.severity is Severity.LOW and stale.evidence["age_days"] > 30
    assert "advisory_database_stale" not in scan(root, sample, now=NOW)
    assert "advisory_database_stale" not in scan(root, sample, now=later, stale_after_days=365)
    assert scan(root, sample)["advisory_database_sample"].severity is Severity.MEDIUM


def test_missing_database_still_completes(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnavailable) as raised:
        open_database(tmp_path / "nowhere")
    assert raised.value.missing
    root = model(tmp_path, {"requirements.txt": "scikit-learn==0.22.2\nnumpy\n"})
    found = scan(root, None, database_problem=str(raised.value))
    assert found["advisory_database_unavailable"].severity is Severity.MEDIUM
    assert "nowhere" in found["advisory_database_unavailable"].title
    assert "unpinned:numpy" in found
    assert not any(f.severity >= Severity.HIGH for f in found.values())


def test_corrupt_database_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / METADATA).write_text('{"database": "osv-x.zip", "index": "osv-x.index.json"}')
    (tmp_path / "db" / "osv-x.zip").write_bytes(b"not a zip")
    with pytest.raises(DatabaseUnavailable) as raised:
        open_database(tmp_path / "db")
    assert not raised.value.missing
    (tmp_path / "db" / "osv-x.zip").unlink()
    with pytest.raises(DatabaseUnavailable, match=r"osv-x\.zip"):
        open_database(tmp_path / "db")


def test_lost_index_is_rebuilt_and_damaged_records_do_not_crash(tmp_path: Path) -> None:
    info = update(SAMPLE_DATABASE, tmp_path / "db")
    next((tmp_path / "db").glob("*.index.json")).write_text("{}")
    with open_database(tmp_path / "db") as db:
        assert db.info == info and db.query("scikit-learn", "0.22.2")
    index = next((tmp_path / "db").glob("*.index.json"))
    index.write_text(json.dumps({"sha256": info.sha256, "packages": {"scikit-learn": ["gone.json"]}}))
    root = model(tmp_path, {"requirements.txt": "scikit-learn==0.22.2\n"})
    with open_database(tmp_path / "db") as db:
        found = scan(root, db)
    assert "gone.json" in found["advisory_database_unavailable"].title, "fail to a finding, not a crash"
    damaged = record("PYSEC-2020-107")
    damaged["affected"][0]["ranges"] = [{"type": "ECOSYSTEM", "events": ["introduced", {"fixed": [1]}]}, 7]
    damaged["affected"][0]["versions"] = {"0.22.2": True}
    damaged["references"] = "none"
    assert not affects(damaged, "scikit-learn", "0.22.2")
    assert to_advisory(damaged, "scikit-learn", "0.22.2").fixed == ()


# -- update ---------------------------------------------------------------------------------------


def sample_zip(path: Path, ids: list[str] | None = None) -> bytes:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(SAMPLE_DATABASE.glob("PYSEC-*.json")):
            if ids is None or file.stem in ids:
                archive.write(file, file.name)
    return path.read_bytes()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict[str, tuple[int, bytes]]]]:
    """A loopback HTTP server (127.0.0.1, free port) serving `routes[path] = (status, body)`."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    routes: dict[str, tuple[int, bytes]] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = routes.get(self.path, (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", routes
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_update_over_http_replaces_the_database(tmp_path: Path, server) -> None:
    base, routes = server
    routes["/v1.zip"] = (200, sample_zip(tmp_path / "v1.zip", ["PYSEC-2020-107"]))
    routes["/v2.zip"] = (200, sample_zip(tmp_path / "v2.zip"))
    dest = tmp_path / "home" / "advisories"
    first = update(f"{base}/v1.zip", dest, now=NOW)
    assert first.records == 1 and first.source == f"{base}/v1.zip"
    with open_database(dest) as db:
        assert [a.id for a in db.query("scikit-learn", "0.22.2")] == ["PYSEC-2020-107"]
        assert db.query("mlflow", "2.0.0") == []
    second = update(f"{base}/v2.zip", dest)
    assert second.records == 54 and second.sha256 != first.sha256
    assert read_info(dest) == second
    with open_database(dest) as db:
        assert "PYSEC-2023-252" in [a.id for a in db.query("mlflow", "2.0.0")]
        assert db.info.fetched_at is not None and db.info.fetched_at > NOW
    assert not list(dest.glob(".download-*"))


def _bad_body(kind: str, tmp_path: Path) -> bytes:
    if kind == "html":
        return b"<html>maintenance</html>"
    if kind == "truncated":
        return sample_zip(tmp_path / "full.zip")[:-2000]
    if kind == "corrupt-member":  # central directory intact, one member's deflate data damaged
        data = bytearray(sample_zip(tmp_path / "full.zip"))
        for offset in range(200, 260):
            data[offset] ^= 0xFF
        return bytes(data)
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as archive:
        if kind == "not-osv":
            archive.writestr("x.json", '["not a record"]')
        else:  # valid OSV, but no PyPI advisory in it
            npm = record("PYSEC-2020-107")
            npm["affected"][0]["package"]["ecosystem"] = "npm"
            archive.writestr("a.json", json.dumps(npm))
    return (tmp_path / "bad.zip").read_bytes()


@pytest.mark.parametrize("kind", ["html", "truncated", "corrupt-member", "not-osv", "npm-only"])
def test_bad_download_keeps_the_old_database(tmp_path: Path, server, kind: str) -> None:
    base, routes = server
    dest = tmp_path / "advisories"
    update(SAMPLE_DATABASE, dest)  # from the bundled directory of records
    before = (dest / METADATA).read_bytes()
    routes["/osv.zip"] = (200, _bad_body(kind, tmp_path))
    with pytest.raises(UpdateError):
        update(f"{base}/osv.zip", dest)
    assert (dest / METADATA).read_bytes() == before
    assert not list(dest.glob(".download-*"))
    with open_database(dest) as db:
        assert db.info.sample and db.query("scikit-learn", "0.22.2")


def test_http_errors_and_size_limit_keep_the_old_database(tmp_path: Path, server) -> None:
    base, routes = server
    dest = tmp_path / "advisories"
    update(SAMPLE_DATABASE, dest)
    before = (dest / METADATA).read_bytes()
    routes["/big.zip"] = (200, sample_zip(tmp_path / "big.zip"))
    with pytest.raises(UpdateError, match="404"):
        update(f"{base}/missing.zip", dest)
    with pytest.raises(UpdateError, match="larger than"):
        update(f"{base}/big.zip", dest, max_bytes=1000)
    with pytest.raises(UpdateError, match="unsupported"):
        update("ftp://example.com/osv.zip", dest)
    with pytest.raises(UpdateError, match="no such file"):
        update(tmp_path / "absent.zip", dest)
    assert (dest / METADATA).read_bytes() == before


def test_update_redacts_credentials_in_the_recorded_source(tmp_path: Path, server) -> None:
    base, routes = server
    routes["/osv.zip"] = (200, sample_zip(tmp_path / "osv.zip"))
    secret = base.replace("http://", "http://user:tok@")
    info = update(secret + "/osv.zip", tmp_path / "db")
    assert "tok" not in info.source and "tok" not in (tmp_path / "db" / METADATA).read_text()
    with pytest.raises(UpdateError) as raised:
        update(secret + "/missing.zip", tmp_path / "db")
    assert "404" in str(raised.value) and "tok" not in str(raised.value)


def test_update_from_a_local_zip_and_old_snapshots_are_pruned(tmp_path: Path) -> None:
    dest = tmp_path / "db"
    for ids in (["PYSEC-2020-107"], ["PYSEC-2020-108"], None):
        sample_zip(tmp_path / "src.zip", ids)
        update(tmp_path / "src.zip", dest)
    assert len(list(dest.glob("osv-*.zip"))) == 2, "current and previous only"
    with open_database(dest) as db:
        assert db.info.records == 54 and not db.info.sample


def test_installed_database_reads_only_queried_packages(tmp_path: Path) -> None:
    update(SAMPLE_DATABASE, tmp_path / "db")
    with open_database(tmp_path / "db") as db:
        assert {"scikit-learn", "pillow", "torch"} <= db.packages
        db.query("scikit-learn", "0.22.2")
        assert db.loaded == {"scikit-learn"}


# -- the shared snapshot (skipped on a fresh clone) -----------------------------------------------


@needs_shared
def test_sample_records_are_exact_copies_of_the_shared_snapshot() -> None:
    with zipfile.ZipFile(SHARED_ZIP) as archive:
        for file in SAMPLE_DATABASE.glob("PYSEC-*.json"):
            assert file.read_bytes() == archive.read(file.name), file.name


@needs_shared
def test_shared_snapshot_bare_and_installed(tmp_path: Path) -> None:
    with open_database(SHARED_ZIP) as bare:
        assert bare.info.records == 2661
        assert "PYSEC-2020-107" in [a.id for a in bare.query("scikit-learn", "0.22.2")]
    info = update(SHARED_ZIP, tmp_path / "db")
    assert info.records == 2661 and info.snapshot_at and info.snapshot_at.date().isoformat() == "2024-10-10"
    root = model(tmp_path, {"requirements.txt": "scikit-learn==0.22.2\nPyYAML==5.3\ntorch==2.4.1\n"})
    with open_database(tmp_path / "db") as db:
        found = scan(root, db, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert {"advisory:pyyaml:PYSEC-2020-96", "advisory:pyyaml:PYSEC-2021-142"} <= set(found)
    assert "advisory:scikit-learn:PYSEC-2020-107" in found
    assert not [k for k in found if k.startswith("advisory:torch")]
    assert found["advisory_database_stale"].severity is Severity.LOW
    assert "advisory_database_sample" not in found


def test_cli_advisories_update_from_a_loopback_server_then_a_bad_source_keeps_it(
    tmp_path: Path, server
) -> None:
    from tests.test_cli import mlgate

    base, routes = server
    routes["/osv.zip"] = (200, sample_zip(tmp_path / "osv.zip"))
    routes["/broken.zip"] = (200, b"<html>maintenance</html>")
    home = tmp_path / "home"
    ok = mlgate("advisories", "update", "--from", f"{base}/osv.zip", home=home, NO_PROXY="127.0.0.1")
    assert ok.returncode == 0, ok.stderr
    assert "54 records" in ok.stdout
    bad = mlgate("advisories", "update", "--from", f"{base}/broken.zip", home=home, NO_PROXY="127.0.0.1")
    assert bad.returncode == 2 and bad.stderr.startswith("mlgate: error: advisories update:")
    assert bad.stderr.count("\n") == 1
    assert read_info(home / "advisories").records == 54, "the previous database is intact"
