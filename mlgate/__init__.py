"""mlgate: AI vulnerability management for the ML lifecycle, on Dagster.

The public Python API is deliberately small; everything else lives in `pipelines`, `assets` and
`checks`. Imports are lazy so that `import mlgate` stays cheap.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> str:
    """`mlgate.__version__`, read from the installed metadata only when asked (it costs ~0.1 s)."""
    if name != "__version__":
        raise AttributeError(f"module 'mlgate' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlgate")
    except PackageNotFoundError:  # running from a source tree without installing
        return "0.0.0+local"


__all__ = ["__version__", "load_model", "scan_data"]


def load_model(uri: str, tracking_uri: str | None = None) -> Any:
    """Load a registered model for serving, only if mlgate passed exactly these files.

    `uri` is ``models:/<name>/<version>`` or ``models:/<name>@<alias>``. The files are copied
    once, that copy is verified (a complete, passing scan of its artifact digest under the current
    policy) and that same copy is loaded. Raises `checks.load_guard.UntrustedModelError` otherwise.
    """
    from mlgate.api import load_model as _load

    return _load(uri, tracking_uri=tracking_uri)


def scan_data(path: str, label: str, suite: str | None = None, policy: str | None = None) -> dict[str, Any]:
    """Run the data checks on a CSV/Parquet file and return the JSON scan report."""
    from mlgate.api import scan_data as _scan

    return _scan(path, label, suite=suite, policy_path=policy)
