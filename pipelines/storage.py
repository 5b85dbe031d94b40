"""Files under MLGATE_HOME: training snapshots by digest, version snapshots and the artifact cache.

Every write goes to a temporary path first and is renamed into place, so a crash never leaves a
half-written snapshot that a later step could mistake for a complete one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from checks.digests import file_digest, frame_digest


def registry_id(registry_uri: str) -> str:
    """A short, stable id for a registry URI (used in cache paths and foreign partition keys)."""
    return hashlib.sha256(registry_uri.encode()).hexdigest()[:8]


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, allow_nan=False)
    os.replace(tmp, path)


@dataclass
class DatasetSnapshot:
    """A validated training snapshot: the frame (file order kept), its label and holdout rows."""

    name: str
    label: str
    digest: str
    source: str
    rows: int
    columns: list[str]
    holdout_rows: list[int]
    directory: str = ""
    model_name: str = ""  # the model this run trains (not part of the stored content)

    @property
    def identity(self) -> str:
        """Stable subject identity of data findings: model name plus logical dataset name."""
        return f"{self.model_name}:{self.name}"

    @property
    def data_path(self) -> Path:
        return Path(self.directory) / "data.parquet"

    def frame(self) -> pd.DataFrame:
        return pd.read_parquet(self.data_path)

    def training_rows(self) -> list[int]:
        holdout = set(self.holdout_rows)
        return [i for i in range(self.rows) if i not in holdout]


def save_dataset(
    datasets_dir: Path, df: pd.DataFrame, *, name: str, label: str, source: str, holdout_rows: list[int]
) -> DatasetSnapshot:
    """Store the snapshot under its digest (idempotent: an existing snapshot is reused as is).

    The digest covers the frame, the label column and the holdout rows, so the same file split
    differently or read with another label is a different snapshot with its own stored checks.
    """
    holdout_rows = sorted(int(i) for i in holdout_rows)
    identity = json.dumps([frame_digest(df), label, holdout_rows])
    digest = hashlib.sha256(identity.encode()).hexdigest()
    target = datasets_dir / digest
    snapshot = DatasetSnapshot(
        name,
        label,
        digest,
        source,
        len(df),
        [str(c) for c in df.columns],
        holdout_rows,
        str(target),
    )
    if not (target / "meta.json").exists():
        datasets_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=datasets_dir, prefix=".tmp-"))
        df.to_parquet(staging / "data.parquet", index=False)
        meta = asdict(snapshot) | {"directory": "", "model_name": ""}
        write_json_atomic(staging / "meta.json", meta)
        try:
            os.rename(staging, target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not (target / "meta.json").exists():  # not a concurrent writer of the same digest
                raise
    return snapshot


def load_dataset(datasets_dir: Path, digest: str) -> DatasetSnapshot | None:
    """The stored snapshot for a digest, or None when it is not retrievable."""
    meta = datasets_dir / digest / "meta.json"
    if not meta.is_file():
        return None
    data = json.loads(meta.read_text())
    data["directory"] = str(meta.parent)
    return DatasetSnapshot(**data)


@dataclass
class VersionSnapshot:
    """What mlgate knows about one registered version without deserialising its model."""

    registry_uri: str
    name: str
    version: str
    source: str
    run_id: str | None
    artifact_digest: str
    manifest: dict[str, str]  # relative path -> sha256 of every artifact file
    artifact_dir: str
    tags: dict[str, str] = field(default_factory=dict)
    model_tags: dict[str, str] = field(default_factory=dict)
    has_signature: bool = False
    has_input_example: bool = False
    dataset_digest: str | None = None
    lineage_note: str = ""  # why the training data is not retrievable, when it is not

    @property
    def subject(self) -> dict[str, str]:
        return {"model": self.name, "version": self.version, "registry": self.registry_uri}


def version_dir(cache_dir: Path, registry_uri: str, name: str, version: str) -> Path:
    return cache_dir / "versions" / registry_id(registry_uri) / name / str(version)


def cache_artifacts(cache_dir: Path, downloaded: Path) -> tuple[str, dict[str, str], Path]:
    """Copy downloaded artifact files into the content-addressed cache; return digest, manifest, dir."""
    manifest = {
        p.relative_to(downloaded).as_posix(): file_digest(p)
        for p in sorted(downloaded.rglob("*"))
        if p.is_file()
    }
    digest = manifest_digest(manifest)
    target = cache_dir / "artifacts" / digest
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
        try:
            shutil.copytree(downloaded, staging / "tree")
            os.rename(staging / "tree", target)
        except OSError:
            if not target.exists():  # not a concurrent writer of the same digest: a real failure
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return digest, manifest, target


def manifest_digest(manifest: dict[str, str]) -> str:
    """The artifact-tree digest: sha256 over sorted (path, file digest) pairs."""
    h = hashlib.sha256()
    for path in sorted(manifest):
        h.update(path.encode() + b"\0" + manifest[path].encode() + b"\n")
    return h.hexdigest()


def tree_manifest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): file_digest(p) for p in sorted(root.rglob("*")) if p.is_file()}


def save_version(cache_dir: Path, snapshot: VersionSnapshot) -> Path:
    path = version_dir(cache_dir, snapshot.registry_uri, snapshot.name, snapshot.version) / "snapshot.json"
    write_json_atomic(path, asdict(snapshot))
    return path


def load_version(cache_dir: Path, registry_uri: str, name: str, version: str) -> VersionSnapshot | None:
    path = version_dir(cache_dir, registry_uri, name, version) / "snapshot.json"
    if not path.is_file():
        return None
    return VersionSnapshot(**json.loads(path.read_text()))


@contextmanager
def alias_lock(home: str, name: str, alias: str) -> Iterator[None]:
    """Serialise alias moves of one model across processes (read, compare and set as one step)."""
    path = Path(home) / "locks" / f"{hashlib.sha256(f'{name}@{alias}'.encode()).hexdigest()[:16]}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
