"""Artifact safety (placeholder until the static scanner lands): accept only the scikit-learn
flavour's own files, in the skops format, without deserialising anything.

The MLmodel file is parsed with a safe YAML loader; nothing in the artifact is imported or loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from checks.findings import Finding, Severity

VERSION = "1"
CHECK = "artifact_safety"
TAXONOMY = {"owasp_ml": "ML06:2023", "atlas": "AML.T0010"}
ALLOWED_FLAVORS = {"sklearn", "python_function"}
ALLOWED_FILES = {
    "MLmodel",
    "model.skops",
    "conda.yaml",
    "python_env.yaml",
    "requirements.txt",
    "input_example.json",
    "serving_input_example.json",
    "registered_model_meta",
}
SAFE_FORMATS = {"skops"}
# Types beyond skops' own defaults (scikit-learn estimators, builtins) that a model may contain,
# by exact name. Anything else, callables included, is refused: skops constructs what it is told
# to trust, so a prefix such as "numpy." would admit functions that run code.
EXTRA_TRUSTED_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._TemperatureScaling",
    }
)


def untrusted_skops_types(data: bytes) -> list[str]:
    """Types in a skops file outside skops' defaults and EXTRA_TRUSTED_TYPES, read from its schema
    without constructing anything."""
    import skops.io

    return [t for t in skops.io.get_untrusted_types(data=data) if t not in EXTRA_TRUSTED_TYPES]


def scan_sklearn_artifact(root: Path, *, subject_identity: str, subject: dict | None = None) -> list[Finding]:
    """Findings for anything in an MLflow scikit-learn model directory that is not its own file."""

    def finding(severity: Severity, key: str, title: str, remediation: str, **evidence) -> Finding:
        return Finding(
            check=CHECK,
            severity=severity,
            title=title,
            stage="registration",
            subject_identity=subject_identity,
            key=key,
            subject=subject or {},
            evidence=evidence,
            taxonomy=TAXONOMY,
            remediation=remediation,
        )

    relog = "Re-log the model with mlflow.sklearn.log_model(..., serialization_format='skops')."
    found = []
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    for name in files:
        if name not in ALLOWED_FILES:
            found.append(
                finding(
                    Severity.CRITICAL,
                    f"unexpected_file:{name}",
                    f"Unexpected file in model artifact: {name}",
                    "Remove extra files and code paths from the artifact; " + relog,
                    file=name,
                )
            )
    try:
        mlmodel = yaml.safe_load((root / "MLmodel").read_text())
        flavors = mlmodel["flavors"]
        if not isinstance(flavors, dict):
            raise TypeError("flavors is not a mapping")
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        found.append(
            finding(
                Severity.CRITICAL,
                "mlmodel_unreadable",
                f"MLmodel missing or unreadable: {type(exc).__name__}: {exc}",
                "Re-register the version from a complete MLflow model directory.",
                files=files,
            )
        )
        return found
    for flavor in sorted(set(flavors) - ALLOWED_FLAVORS):
        found.append(
            finding(
                Severity.CRITICAL,
                f"flavor:{flavor}",
                f"Flavor {flavor!r} is not accepted yet (only scikit-learn)",
                "Only scikit-learn models can be scanned for now.",
                flavor=flavor,
            )
        )
    sklearn = flavors.get("sklearn") or {}
    if not sklearn:
        found.append(
            finding(Severity.CRITICAL, "no_sklearn_flavor", "Model has no scikit-learn flavor", relog)
        )
        return found
    fmt = sklearn.get("serialization_format")
    if fmt not in SAFE_FORMATS:
        found.append(
            finding(
                Severity.HIGH,
                f"serialization:{fmt}",
                f"Serialization format {fmt!r} can run code when loaded",
                relog,
                serialization_format=fmt,
            )
        )
    foreign = [t for t in sklearn.get("skops_trusted_types") or [] if t not in EXTRA_TRUSTED_TYPES]
    if foreign:
        found.append(
            finding(
                Severity.HIGH,
                "skops_trusted_types",
                f"Artifact asks the loader to trust types outside scikit-learn/NumPy/SciPy: "
                f"{', '.join(map(str, foreign))}",
                "Do not ship trusted-type lists for other modules; mlgate decides what is trusted. " + relog,
                types=foreign,
            )
        )
    if sklearn.get("code"):
        found.append(
            finding(
                Severity.CRITICAL,
                "code_paths",
                "Artifact ships code paths",
                "Remove code_paths; " + relog,
                code=sklearn["code"],
            )
        )
    model_file = sklearn.get("pickled_model")
    if model_file and model_file not in files:
        found.append(
            finding(
                Severity.CRITICAL,
                "model_file_missing",
                f"Model file {model_file!r} named in MLmodel is missing",
                "Re-register the version from a complete MLflow model directory.",
            )
        )
    elif model_file and fmt in SAFE_FORMATS:
        found += _audit_skops(root / model_file, finding)
    return found


def _audit_skops(path: Path, finding: Callable[..., Finding]) -> list[Finding]:
    """Static audit of a skops file's schema: every type it would construct must be trusted."""
    try:
        foreign = untrusted_skops_types(path.read_bytes())
    except Exception as exc:  # noqa: BLE001 - a corrupt archive is a finding, not a crash
        return [
            finding(
                Severity.CRITICAL,
                "model_file_unreadable",
                f"Model file {path.name} is not a readable skops archive: {type(exc).__name__}: {exc}",
                "Re-register the version from a complete MLflow model directory.",
            )
        ]
    if not foreign:
        return []
    return [
        finding(
            Severity.CRITICAL,
            "untrusted_types",
            f"Model file refers to types outside the trust list: {', '.join(foreign)}",
            "Only scikit-learn models made of standard estimators are accepted; anything "
            "else could run code when loaded.",
            types=foreign,
        )
    ]
