"""Training-data lineage of versions trained outside mlgate, resolved from their MLflow run.

A version mlgate trained carries the digest of its audited snapshot in a tag. For any other
version, the run that logged the model may still say what it was trained on:

1. dataset inputs (`mlflow.log_input`) whose source is readable: a local path or an artifact URI
   MLflow can download (runs:/, mlflow-artifacts:/, file:, cloud stores). The rows read back must
   match the digest MLflow recorded, so data that changed since training is never mistaken for it;
2. a tabular artifact of the run (`.csv` or `.parquet`, outside the model directory).

Context `training` (or none) is the training data; `eval`, `evaluation`, `test`, `validation` or
`holdout` (by context, or in an artifact's file name) is the holdout. The label column is the
`mlgate.label` tag (version, then run) or else the one data column the model's signature does not
take as input. `mlflow.data.from_pandas` without a source keeps only a digest, schema and profile:
then the data is not retrievable and the reason is recorded, so checks that need it report
`not_run` with a medium finding instead of silently passing.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from pipelines.storage import DatasetSnapshot, save_dataset

LABEL_TAG = "mlgate.label"
HOLDOUT_CONTEXTS = {"eval", "evaluation", "test", "testing", "validation", "holdout"}
HOLDOUT_WORDS = ("test", "eval", "holdout", "valid")
TABULAR_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
MAX_ARTIFACTS_LISTED = 500


@dataclass(frozen=True)
class Lineage:
    """The training snapshot a version resolves to, or why it could not be resolved."""

    dataset: DatasetSnapshot | None
    source: str = ""  # how it was resolved, e.g. "dataset_input:/data/train.csv"
    note: str = ""  # why the data is not retrievable (empty when resolved or nothing was logged)


@dataclass(frozen=True)
class _Table:
    name: str
    where: str  # a readable description of the source
    frame: pd.DataFrame


def resolve_run_lineage(
    client: Any,
    *,
    run_id: str | None,
    version_tags: dict[str, str],
    artifact_dir: Path,
    datasets_dir: Path,
    tracking_uri: str,
) -> Lineage:
    """Find, read and store the training data (and holdout) of a version from its MLflow run."""
    if not run_id:
        return Lineage(None)
    try:
        run = client.get_run(run_id)
    except Exception as exc:  # noqa: BLE001 - a deleted or unreadable run is a lineage gap
        return Lineage(None, note=f"the version's run {run_id} is not readable ({type(exc).__name__})")
    notes: list[str] = []
    train, holdout = _from_dataset_inputs(run, tracking_uri, notes)
    if train is None:
        art_train, art_holdout = _from_run_artifacts(client, run_id, artifact_dir, notes)
        train, holdout = art_train, holdout or art_holdout
    if train is None:
        return Lineage(None, note="; ".join(notes))
    label = (
        version_tags.get(LABEL_TAG)
        or run.data.tags.get(LABEL_TAG)
        or _label_from_signature(artifact_dir, train.frame)
    )
    if not label or label not in train.frame.columns:
        why = f"label column {label!r} is not in the data" if label else "the label column is unknown"
        return Lineage(
            None,
            note=f"training data found at {train.where} but {why}; tag the version {LABEL_TAG}=<column>",
        )
    frame, holdout_rows = train.frame, []
    if holdout is not None and list(holdout.frame.columns) == list(train.frame.columns):
        frame = pd.concat([train.frame, holdout.frame], ignore_index=True)
        holdout_rows = list(range(len(train.frame), len(frame)))
    elif holdout is not None:
        notes.append(f"holdout at {holdout.where} has other columns than the training data; ignored")
    dataset = save_dataset(
        datasets_dir, frame, name=train.name, label=label, source=train.where, holdout_rows=holdout_rows
    )
    return Lineage(dataset, source=train.where, note="; ".join(notes))


def _from_dataset_inputs(
    run: Any, tracking_uri: str, notes: list[str]
) -> tuple[_Table | None, _Table | None]:
    train = holdout = None
    for dataset_input in run.inputs.dataset_inputs if run.inputs else []:
        dataset = dataset_input.dataset
        context = {t.key: t.value for t in dataset_input.tags}.get("mlflow.data.context", "training")
        is_holdout = str(context).lower() in HOLDOUT_CONTEXTS
        if (holdout if is_holdout else train) is not None:
            continue
        table = _read_dataset_input(dataset, tracking_uri, notes)
        if table is None:
            continue
        if is_holdout:
            holdout = table
        else:
            train = table
    return train, holdout


def _read_dataset_input(dataset: Any, tracking_uri: str, notes: list[str]) -> _Table | None:
    label = f"dataset input {dataset.name!r}"
    try:
        source = json.loads(dataset.source or "{}")
    except json.JSONDecodeError:
        source = {}
    uri = source.get("uri") if isinstance(source, dict) else None
    if not uri:
        notes.append(
            f"{label} ({dataset.source_type} source) keeps only a digest, schema and profile, not rows"
        )
        return None
    try:
        frame = _read_uri(uri, tracking_uri)
    except Exception as exc:  # noqa: BLE001 - unreadable data is a lineage gap, recorded as such
        notes.append(f"{label} source {uri} is not readable ({type(exc).__name__}: {exc})")
        return None
    if frame is None:
        notes.append(f"{label} source {uri} is not a CSV or Parquet file")
        return None
    if dataset.digest and _mlflow_digest(frame) != dataset.digest:
        notes.append(f"{label} source {uri} no longer matches the digest logged at training time")
        return None
    return _Table(dataset.name or Path(uri).stem, f"dataset_input:{uri}", frame)


def _from_run_artifacts(
    client: Any, run_id: str, artifact_dir: Path, notes: list[str]
) -> tuple[_Table | None, _Table | None]:
    model_dirs = _model_artifact_paths(artifact_dir)
    candidates = [p for p in _list_artifacts(client, run_id) if Path(p).suffix.lower() in TABULAR_SUFFIXES]
    candidates = [p for p in candidates if not any(p.startswith(d + "/") for d in model_dirs)]
    holdouts = [p for p in candidates if any(w in Path(p).stem.lower() for w in HOLDOUT_WORDS)]
    trains = [p for p in candidates if p not in holdouts]
    if len(trains) > 1:
        preferred = [p for p in trains if "train" in Path(p).stem.lower()]
        trains = preferred if len(preferred) == 1 else trains
    if len(trains) > 1:
        notes.append(f"several tabular run artifacts could be the training data: {', '.join(trains[:5])}")
        return None, None
    if not trains:
        return None, None
    scratch = Path(tempfile.mkdtemp(prefix="mlgate-lineage-"))
    try:
        tables = []
        for path in [trains[0], *holdouts[:1]]:
            local = Path(client.download_artifacts(run_id, path, str(scratch)))
            tables.append(_Table(Path(path).stem, f"run_artifact:runs:/{run_id}/{path}", _read_file(local)))
    except Exception as exc:  # noqa: BLE001 - unreadable data is a lineage gap, recorded as such
        notes.append(f"run artifact {trains[0]} is not readable ({type(exc).__name__}: {exc})")
        return None, None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return tables[0], tables[1] if len(tables) > 1 else None


def _list_artifacts(client: Any, run_id: str) -> list[str]:
    """Every artifact file path of the run (breadth first, bounded)."""
    found: list[str] = []
    pending: list[str | None] = [None]
    while pending and len(found) < MAX_ARTIFACTS_LISTED:
        for info in client.list_artifacts(run_id, pending.pop(0)):
            (pending if info.is_dir else found).append(info.path)
    return found


def _model_artifact_paths(artifact_dir: Path) -> set[str]:
    """Artifact paths of logged models in the run (their files are not training data)."""
    mlmodel = _read_mlmodel(artifact_dir)
    path = mlmodel.get("artifact_path")
    return {str(path)} if path else {"model"}


def _read_uri(uri: str, tracking_uri: str) -> pd.DataFrame | None:
    local = Path(uri[len("file://") :] if uri.startswith("file://") else uri)
    if "://" not in uri and ":/" not in uri:
        return _read_file(local)
    from mlflow.artifacts import download_artifacts

    scratch = Path(tempfile.mkdtemp(prefix="mlgate-lineage-"))
    try:
        return _read_file(
            Path(download_artifacts(artifact_uri=uri, dst_path=str(scratch), tracking_uri=tracking_uri))
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _read_file(path: Path) -> pd.DataFrame | None:
    kind = TABULAR_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        return None
    return pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)


def _mlflow_digest(frame: pd.DataFrame) -> str:
    from mlflow.data.digest_utils import compute_pandas_digest

    return compute_pandas_digest(frame)


def _read_mlmodel(artifact_dir: Path) -> dict:
    path = artifact_dir / "MLmodel"
    try:
        data = yaml.safe_load(path.read_text()) if path.is_file() else {}
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _label_from_signature(artifact_dir: Path, frame: pd.DataFrame) -> str | None:
    """The one data column the model's input signature does not take, if there is exactly one."""
    signature = _read_mlmodel(artifact_dir).get("signature") or {}
    try:
        inputs = {col.get("name") for col in json.loads(signature.get("inputs") or "[]")}
    except (json.JSONDecodeError, AttributeError, TypeError):
        return None
    extra = [str(c) for c in frame.columns if str(c) not in inputs]
    return extra[0] if inputs and len(extra) == 1 else None
