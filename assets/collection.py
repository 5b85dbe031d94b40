"""Data collection: load the configured source (bundled example by default)."""

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd

from assets.sources import InputError, inject_label_noise, read_table, require_label
from checks.digests import file_digest, frame_digest
from pipelines.settings import BUNDLED_DATA, BUNDLED_LABEL, DEFAULT_MODEL_NAME


class SourceConfig(dg.Config):
    path: str = str(BUNDLED_DATA)
    model_name: str = DEFAULT_MODEL_NAME  # the registered model this retrain produces
    label: str = BUNDLED_LABEL
    dataset_name: str = ""  # logical name (fingerprints, suite file); default: file stem
    inject_label_noise: float = 0.0  # flip this fraction of labels (demo of a poisoned retrain)
    noise_seed: int = 0


@dataclass
class RawData:
    frame: pd.DataFrame
    source: str
    model_name: str
    name: str
    label: str
    file_digest: str
    injected_rows: list[int]


@dg.asset(group_name="retrain", kinds={"pandas"})
def raw_data(context: dg.AssetExecutionContext, config: SourceConfig) -> dg.Output[RawData]:
    """The configured CSV/Parquet source as loaded, with its URI, shape and content digest."""
    try:
        df = read_table(config.path)
        require_label(df, config.label, config.path)
        df, flipped = inject_label_noise(df, config.label, config.inject_label_noise, config.noise_seed)
    except InputError as exc:
        raise dg.Failure(description=str(exc)) from None
    if flipped:
        context.log.warning(f"injected label noise into {len(flipped)} rows (demo of a poisoned retrain)")
    name = config.dataset_name or Path(config.path).stem
    raw = RawData(
        df,
        str(Path(config.path).resolve()),
        config.model_name,
        name,
        config.label,
        file_digest(Path(config.path)),
        flipped,
    )
    return dg.Output(
        raw,
        metadata={
            "source": raw.source,
            "dataset": name,
            "rows": len(df),
            "columns": len(df.columns),
            "file_digest": raw.file_digest,
            "content_digest": frame_digest(df),
            "injected_label_noise_rows": len(flipped),
        },
    )
