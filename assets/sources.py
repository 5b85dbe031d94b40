"""Reading a configured tabular source (CSV or Parquet) with one clear error per bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

READERS = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet}


class InputError(ValueError):
    """A missing, unreadable or unusable input; the message names the input and the problem."""


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file; raise InputError naming the file when it cannot be used."""
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise InputError(f"{path}: unsupported file type {path.suffix or '(none)'} (use .csv or .parquet)")
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        df = reader(path)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: file is empty") from None
    except Exception as exc:  # noqa: BLE001 - parsers raise many types
        raise InputError(
            f"{path}: cannot be read as {path.suffix[1:]} ({type(exc).__name__}: {exc})"
        ) from None
    if df.empty:
        raise InputError(f"{path}: no data rows")
    return df


def require_label(df: pd.DataFrame, label: str, source: str) -> None:
    if label not in df.columns:
        raise InputError(
            f"{source}: label column {label!r} not found (columns: {', '.join(map(str, df.columns[:20]))})"
        )


def inject_label_noise(
    df: pd.DataFrame, label: str, fraction: float, seed: int = 0
) -> tuple[pd.DataFrame, list[int]]:
    """Flip `fraction` of the labelled rows to another class, seeded (for demos and tests).

    Returns the new frame and the sorted positions that were flipped.
    """
    if not 0 <= fraction <= 1:
        raise InputError(f"--inject-label-noise must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    labelled = np.flatnonzero(df[label].notna().to_numpy())
    classes = df[label].dropna().unique()
    if len(classes) < 2 or fraction == 0:
        return df, []
    chosen = np.sort(rng.choice(labelled, round(fraction * len(labelled)), replace=False))
    noisy = df.copy()
    values = noisy[label].to_numpy(copy=True)
    for row in chosen:
        others = classes[classes != values[row]]
        values[row] = others[rng.integers(len(others))]
    noisy[label] = values
    return noisy, chosen.tolist()
