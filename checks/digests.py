"""Content digests of files and data frames (stable identities for caching and gating)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def frame_digest(df: pd.DataFrame) -> str:
    """sha256 of a frame's column names, dtypes and row values (row order matters)."""
    h = hashlib.sha256()
    h.update(repr([(str(c), str(t)) for c, t in df.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()
