"""The numeric matrix the poisoning check reads, from `PreparedData.features`, in original units."""

from __future__ import annotations

import numpy as np
import pandas as pd


def feature_matrix(features: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Numbers as they are (missing values stay NaN; the check imputes column medians), booleans as
    0/1, other columns one-hot encoded as `column=value` (missing as its own value).

    Unscaled on purpose: a backdoor pattern is reported in the data's own units, and the check
    standardises internally. `prepare` has already dropped identifier and free-text columns.
    """
    blocks: list[np.ndarray] = []
    names: list[str] = []
    for column in features.columns:
        series = features[column]
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            blocks.append(pd.to_numeric(series, errors="coerce").astype(float).to_numpy()[:, None])
            names.append(str(column))
            continue
        values = series.astype("string").fillna("<missing>")
        levels = sorted(values.unique())
        blocks.append((values.to_numpy()[:, None] == np.array(levels, dtype=object)[None, :]).astype(float))
        names.extend(f"{column}={level}" for level in levels)
    if not blocks:
        return np.empty((len(features), 0)), []
    return np.hstack(blocks), names
