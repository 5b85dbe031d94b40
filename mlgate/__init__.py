"""mlgate: AI vulnerability management for the ML lifecycle, on Dagster.

The public Python API is deliberately small; everything else lives in `pipelines`, `assets` and
`checks`. Imports are lazy so that `import mlgate` stays cheap.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("mlgate")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+local"

__all__ = ["__version__", "load_model", "scan_data"]


def load_model(uri: str) -> Any:
    """Load a registered model through mlgate's load guard.

    `uri` is ``models:/<name>/<version>`` or ``models:/<name>@<alias>``. Raises
    `checks.load_guard.UntrustedModelError` unless the version's artifact passed mlgate's safety
    scan and the cached copy still matches the scanned digest.
    """
    from mlgate.api import load_model as _load

    return _load(uri)


def scan_data(path: str, label: str, suite: str | None = None, policy: str | None = None) -> dict[str, Any]:
    """Run the data checks on a CSV/Parquet file and return the JSON scan report."""
    from mlgate.api import scan_data as _scan

    return _scan(path, label, suite=suite, policy_path=policy)
