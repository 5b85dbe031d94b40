"""Static model-artifact scanner: findings for whatever loading an artifact would import or run.

Nothing scanned is ever imported, unpickled or loaded. Formats are detected by content: pickles
(protocols 0-5, concatenated), joblib (plain and zlib/gzip/bz2/lzma/xz/lz4-compressed),
gzip/bz2/xz-wrapped content, zip archives (PyTorch, npz, skops, lenient about CRCs and flag bits),
tar archives (legacy PyTorch), NumPy .npy, and MLflow model directories (the MLmodel file and every
file). The module tree imports only the standard library (and PyYAML for MLmodel files, lazily).

    findings = scan_path("path/to/model_dir", subject_identity="my-model")
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from checks.artifact_scan.policy import ScanPolicy
from checks.artifact_scan.report import CHECK
from checks.artifact_scan.scanner import Scan
from checks.findings import Finding

__all__ = ["CHECK", "VERSION", "ScanPolicy", "scan_bytes", "scan_path"]

VERSION = "1"


def scan_path(
    path: str | Path,
    *,
    policy: ScanPolicy | None = None,
    subject_identity: str,
    subject: dict[str, Any] | None = None,
) -> list[Finding]:
    """Scan a file or a directory tree (every file, recursively; links and special files are
    reported, never followed or opened). Returns the findings, worst first; [] means clean.

    Raises FileNotFoundError (or another OSError) only when `path` itself cannot be inspected;
    everything wrong inside it is a finding.
    """
    scan = Scan(policy or ScanPolicy())
    scan.path(Path(path))
    return scan.findings(subject_identity, subject)


def scan_bytes(
    data: bytes,
    *,
    name: str = "<bytes>",
    policy: ScanPolicy | None = None,
    subject_identity: str,
    subject: dict[str, Any] | None = None,
) -> list[Finding]:
    """Scan one in-memory artifact; `name` is reported as its file and hints what a loader would do
    with it (a `.pkl` name makes unrecognisable content a finding), never clears it."""
    from checks.artifact_scan.report import Location
    from checks.artifact_scan.scanner import expected_format

    scan = Scan(policy or ScanPolicy())
    buffer = io.BytesIO(data)
    scan.stream(
        buffer,
        Location(name, None, ""),
        depth=0,
        expect=expected_format(name),
        seekable=buffer,
        size=len(data),
    )
    return scan.findings(subject_identity, subject)
