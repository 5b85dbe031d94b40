"""What an MLflow `MLmodel` file asks the loader to do, read with a safe YAML loader.

Code paths and custom loader modules are imported at load time; a non-empty
`skops_trusted_types` makes skops construct those types; pickle and cloudpickle formats load
through pickle (the model file itself is scanned like any other file). The files the MLmodel names
are returned with the format the loader will read them as, so that a model file the scanner cannot
recognise is reported instead of passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from checks.artifact_scan.rules import classify_name
from checks.findings import Severity

PICKLE_FORMATS = frozenset(["pickle", "cloudpickle"])


@dataclass
class Concern:
    key: str
    severity: Severity
    title: str
    remediation: str
    evidence: dict[str, Any] = field(default_factory=dict)
    runs_code: bool = False


@dataclass
class MLmodelFacts:
    concerns: list[Concern] = field(default_factory=list)
    expected: dict[str, str] = field(default_factory=dict)  # path relative to the model dir -> format


RELOG = "Re-log the model with mlflow.sklearn.log_model(..., serialization_format='skops')."


def inspect_mlmodel(text: bytes, extra_allow: frozenset[str]) -> MLmodelFacts:
    """Concerns raised by one MLmodel file and the model files it names."""
    import yaml

    facts = MLmodelFacts()
    try:
        doc = yaml.safe_load(text)
        flavors = doc["flavors"]
        if not isinstance(flavors, dict):
            raise TypeError("flavors is not a mapping")
    except (yaml.YAMLError, KeyError, TypeError, UnicodeDecodeError) as exc:
        facts.concerns.append(
            Concern(
                "mlmodel:unreadable",
                Severity.HIGH,
                f"MLmodel cannot be read: {type(exc).__name__}: {exc}",
                "Re-register the version from a complete MLflow model directory.",
            )
        )
        return facts
    for flavor, conf in flavors.items():
        if isinstance(conf, dict):
            _flavor(facts, str(flavor), conf, extra_allow)
    return facts


def _flavor(facts: MLmodelFacts, flavor: str, conf: dict[str, Any], extra_allow: frozenset[str]) -> None:
    if conf.get("code"):
        facts.concerns.append(
            Concern(
                "mlmodel:code_paths",
                Severity.CRITICAL,
                f"Flavor {flavor!r} ships code paths that are put on sys.path and imported at load",
                "Remove code_paths from the model; package code as a reviewed dependency. " + RELOG,
                {"flavor": flavor, "code": str(conf["code"])},
                runs_code=True,
            )
        )
    if flavor == "python_function":
        loader = conf.get("loader_module")
        if isinstance(loader, str) and not loader.startswith("mlflow."):
            facts.concerns.append(
                Concern(
                    "mlmodel:loader_module",
                    Severity.CRITICAL,
                    f"Custom loader module {loader!r} is imported and run at load",
                    "Use a built-in MLflow flavor; custom loader modules run arbitrary code.",
                    {"loader_module": loader},
                    runs_code=True,
                )
            )
        for key in ("python_model", "model_path"):
            if isinstance(conf.get(key), str) and conf.get(key).endswith((".pkl", ".pickle", ".cloudpickle")):
                facts.expected[conf[key]] = "pickle"
    if flavor != "sklearn":
        return
    fmt = conf.get("serialization_format", "cloudpickle")
    model_file = conf.get("pickled_model")
    if isinstance(model_file, str):
        facts.expected[model_file] = "skops" if fmt == "skops" else "pickle"
    if fmt != "skops":
        facts.concerns.append(
            Concern(
                f"mlmodel:serialization_format:{fmt}",
                Severity.MEDIUM,
                f"Model is stored as {fmt!r}: loading it unpickles (the file was scanned statically)",
                RELOG,
                {"serialization_format": fmt, "pickled_model": model_file},
            )
        )
    trusted = conf.get("skops_trusted_types")
    if trusted:
        _trusted_types(facts, trusted, extra_allow)


def _trusted_types(facts: MLmodelFacts, trusted: Any, extra_allow: frozenset[str]) -> None:
    names = [str(t) for t in trusted] if isinstance(trusted, list) else [str(trusted)]
    foreign: list[str] = []
    severity = Severity.HIGH
    runs_code = False
    for name in names:
        verdict = classify_name(name, extra_allow)
        if verdict.status == "allow":
            continue
        foreign.append(name)
        if verdict.category is not None and verdict.category.severity > severity:
            severity, runs_code = verdict.category.severity, verdict.category.runs_code
    if foreign:
        facts.concerns.append(
            Concern(
                "mlmodel:skops_trusted_types",
                severity,
                f"MLmodel tells skops to trust types outside the allowlist: {', '.join(foreign)}",
                "Do not ship trusted-type lists; mlgate's allowlist decides what is trusted. " + RELOG,
                {"types": foreign},
                runs_code=runs_code,
            )
        )
