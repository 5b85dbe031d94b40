"""The AI-BOM: a CycloneDX 1.6 JSON document of every registered model version, the datasets it was
trained on, its Python dependencies and the findings on them.

Pure: plain inputs in (`Inventory`), a dict out; no Dagster or MLflow. The dict is built here rather
than with cyclonedx-python-lib's model classes because they cannot express `modelCard` or component
`data` yet; `validate_bom` checks it with the library's strict 1.6 JSON validator (every schema it
needs ships with the library, so validation never goes to the network) plus the references between
elements. Apart from `serialNumber` and `metadata.timestamp` the output depends only on the inputs.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from checks.advisories import redact_url as redact
from checks.findings import SEVERITIES, Finding, Severity

SPEC_VERSION = "1.6"
SCHEMA_URL = "http://cyclonedx.org/schema/bom-1.6.schema.json"
OWASP_ML_NAME = "OWASP Machine Learning Security Top 10"
OWASP_ML_URL = "https://owasp.org/www-project-machine-learning-security-top-10/"
ATLAS_NAME = "MITRE ATLAS"
ATLAS_URL = "https://atlas.mitre.org/techniques/{}"
OSV_URL = "https://osv.dev/vulnerability/{}"
ADVISORY_CHECK = "dependency_advisories"
MAX_VALUE = 1000  # characters of one property value
MAX_DETAIL_ITEMS = 12  # scalar evidence entries quoted in a vulnerability's detail
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_CVSS_METHODS = {"CVSS_V2": "CVSSv2", "CVSS_V3": "CVSSv3", "CVSS_V4": "CVSSv4"}


@dataclass(frozen=True)
class Package:
    """One Python requirement of a model version, as its environment files pin it."""

    name: str  # PEP 503 normalised
    version: str | None = None  # the exact pin, if any
    specifier: str = ""  # e.g. ">=1.2" when not pinned exactly
    origin: str = "pip"  # pip | conda | build
    direct: str | None = None  # URL, VCS or path reference (credentials redacted)


@dataclass
class DatasetEntry:
    """A training snapshot a version was trained on (stored under its digest when retrievable)."""

    digest: str
    name: str
    source: str = ""
    label: str | None = None
    rows: int | None = None
    columns: list[str] = field(default_factory=list)
    holdout_rows: int | None = None
    retrievable: bool = True


@dataclass
class VersionEntry:
    """One registered model version and what mlgate knows about it.

    `findings` are the version's own (newest scan), `data_findings` those of its training data
    (newest data scan for this model); both with their status under the current waivers.
    `packages` is None when the environment files were not read (the version was never scanned).
    """

    name: str
    version: str
    registry_uri: str
    source: str = ""
    run_id: str | None = None
    status: str = ""
    created_at: str | None = None
    description: str = ""
    aliases: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    artifact_digest: str | None = None
    dataset_digest: str | None = None
    packages: list[Package] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    holdout_rows: int | None = None
    findings: list[Finding] = field(default_factory=list)
    data_findings: list[Finding] = field(default_factory=list)
    blocking_severity: str = "high"
    scanned: bool = False


@dataclass(frozen=True)
class WaiverEntry:
    owner: str
    reason: str
    expires: str  # ISO date


@dataclass
class Inventory:
    registry_uri: str
    versions: list[VersionEntry]
    datasets: list[DatasetEntry]
    waivers: dict[str, WaiverEntry] = field(default_factory=dict)
    tool_version: str = "0.0.0"
    policy_digest: str = ""


# --- small helpers -------------------------------------------------------------------------------


def _prop(name: str, value: Any) -> dict[str, str]:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return {"name": f"mlgate:{name}", "value": text[:MAX_VALUE]}


def _iri(value: str | None) -> str | None:
    """An IRI reference for a URI or an absolute path, percent-encoded; None for anything else."""
    if not value:
        return None
    value = redact(value.strip())
    if value.startswith("/"):
        return "file://" + quote(value)
    if _SCHEME.match(value):
        return quote(value, safe=":/?#[]@!$&'()*+,;=%~")
    return None


def version_ref(entry: VersionEntry) -> str:
    return f"models:/{entry.name}/{entry.version}"


def dataset_ref(digest: str) -> str:
    return f"dataset:{digest}"


def package_ref(package: Package) -> str:
    """The package URL (pkg:pypi/name@version) that names a library component."""
    from packageurl import PackageURL

    return PackageURL(type="pypi", name=package.name, version=package.version or None).to_string()


# --- components ----------------------------------------------------------------------------------


def _model_card(entry: VersionEntry, dataset: DatasetEntry | None) -> dict[str, Any] | None:
    """What mlgate knows for a model card: supervised classification on its dataset, holdout metrics."""
    card: dict[str, Any] = {}
    if dataset is not None:
        card["modelParameters"] = {
            **({"approach": {"type": "supervised"}, "task": "classification"} if dataset.label else {}),
            "datasets": [{"ref": dataset_ref(dataset.digest)}],
        }
    if entry.metrics:
        where = f"holdout ({entry.holdout_rows} rows)" if entry.holdout_rows else "holdout"
        card["quantitativeAnalysis"] = {
            "performanceMetrics": [
                {"type": name, "value": f"{value:.4f}", "slice": where}
                for name, value in sorted(entry.metrics.items())
            ]
        }
    return card or None


def _version_component(entry: VersionEntry, dataset: DatasetEntry | None) -> dict[str, Any]:
    verdict = entry.tags.get("mlgate.verdict") or ("unknown" if entry.scanned else "not_scanned")
    props = [_prop("registry_uri", redact(entry.registry_uri))]
    props += [_prop("alias", a) for a in sorted(entry.aliases)]
    props.append(_prop("verdict", verdict))
    props += [
        _prop(k, v)
        for k, v in (
            ("status", entry.status),
            ("created", entry.created_at),
            ("run_id", entry.run_id),
            ("source", redact(entry.source)),
            ("blocking_severity", entry.blocking_severity),
        )
        if v
    ]
    props += [
        _prop(f"tag.{key.removeprefix('mlgate.')}", value)
        for key, value in sorted(entry.tags.items())
        if key.startswith("mlgate.") and key != "mlgate.verdict"
    ]
    component: dict[str, Any] = {
        "type": "machine-learning-model",
        "bom-ref": version_ref(entry),
        "name": entry.name,
        "version": entry.version,
    }
    if entry.description:
        component["description"] = entry.description
    if entry.artifact_digest and _SHA256.match(entry.artifact_digest):
        component["hashes"] = [{"alg": "SHA-256", "content": entry.artifact_digest}]
    refs = [
        {
            "type": "distribution",
            "url": f"models:/{quote(entry.name, safe='')}/{quote(entry.version, safe='')}",
            "comment": "MLflow model version URI",
        }
    ]
    report = _iri(entry.tags.get("mlgate.report_uri"))
    if report:
        refs.append({"type": "component-analysis-report", "url": report, "comment": "mlgate scan report"})
    component["externalReferences"] = refs
    card = _model_card(entry, dataset)
    if card:
        component["modelCard"] = card
    component["properties"] = props
    return component


def _dataset_component(dataset: DatasetEntry) -> dict[str, Any]:
    facts = [
        (k, v)
        for k, v in (
            ("source", redact(dataset.source)),
            ("label", dataset.label),
            ("rows", dataset.rows),
            ("columns", len(dataset.columns) if dataset.columns else None),
            ("holdout_rows", dataset.holdout_rows),
        )
        if v is not None and v != ""
    ]
    contents: dict[str, Any] = {}
    url = _iri(dataset.source)
    if url:
        contents["url"] = url
    if dataset.columns:
        contents["properties"] = [_prop("column", c) for c in dataset.columns]
    data: dict[str, Any] = {"type": "dataset", "name": dataset.name}
    if contents:
        data["contents"] = contents
    component: dict[str, Any] = {
        "type": "data",
        "bom-ref": dataset_ref(dataset.digest),
        "name": dataset.name,
        "version": dataset.digest[:12],
    }
    if _SHA256.match(dataset.digest):
        component["hashes"] = [{"alg": "SHA-256", "content": dataset.digest}]
    component["data"] = [data]
    component["properties"] = [_prop(k, v) for k, v in facts] + [_prop("retrievable", dataset.retrievable)]
    return component


def _library_components(versions: Iterable[VersionEntry]) -> dict[str, dict[str, Any]]:
    """One library component per package URL, whichever versions require it."""
    found: dict[str, dict[str, Any]] = {}
    for entry in versions:
        for package in entry.packages or []:
            ref = package_ref(package)
            version = {"version": package.version} if package.version else {}
            component = found.setdefault(
                ref,
                {"type": "library", "bom-ref": ref, "name": package.name, **version, "purl": ref},
            )
            component.setdefault("properties", [])
            notes = [_prop("origin", package.origin)]
            if package.specifier and not package.version:
                notes.append(_prop("specifier", package.specifier))
            if package.direct:
                notes.append(_prop("direct_reference", redact(package.direct)))
            component["properties"] += [n for n in notes if n not in component["properties"]]
    for component in found.values():
        component["properties"].sort(key=lambda p: (p["name"], p["value"]))
    return found


# --- vulnerabilities -----------------------------------------------------------------------------


@dataclass
class _Occurrence:
    finding: Finding
    affects: set[str]
    blocking: bool


def _references(finding: Finding) -> list[dict[str, Any]]:
    refs = []
    owasp, atlas = finding.taxonomy.get("owasp_ml"), finding.taxonomy.get("atlas")
    if owasp:
        refs.append({"id": owasp, "source": {"name": OWASP_ML_NAME, "url": OWASP_ML_URL}})
    if atlas:
        refs.append({"id": atlas, "source": {"name": ATLAS_NAME, "url": ATLAS_URL.format(quote(atlas))}})
    if finding.check == ADVISORY_CHECK:
        for alias in sorted(set(finding.evidence.get("aliases") or [])):
            refs.append(
                {"id": str(alias), "source": {"name": "OSV", "url": OSV_URL.format(quote(str(alias)))}}
            )
    return refs


def _ratings(finding: Finding) -> list[dict[str, Any]]:
    ratings: list[dict[str, Any]] = [
        {"source": {"name": "mlgate"}, "severity": finding.severity.label, "method": "other"}
    ]
    kind, _, score = str(finding.evidence.get("severity_source") or "").partition(":")
    if kind in _CVSS_METHODS:
        try:
            value = float(score)
        except ValueError:
            return ratings
        ratings.append({"source": {"name": "OSV"}, "score": value, "method": _CVSS_METHODS[kind]})
    return ratings


def _detail(finding: Finding) -> str:
    """Check and stage, the advisory summary, and scalar evidence (no row lists, values capped)."""
    parts = [f"mlgate check {finding.check} at the {finding.stage} stage."]
    summary = finding.evidence.get("summary")
    if isinstance(summary, str) and summary.strip():
        parts.append(summary.strip().rstrip(".") + ".")
    scalars = [
        f"{k}={v}"
        for k, v in sorted(finding.evidence.items())
        if k != "summary"
        and (isinstance(v, (int, float, bool)) or (isinstance(v, str) and 0 < len(v) <= 120))
    ]
    if scalars:
        parts.append("Evidence: " + ", ".join(scalars[:MAX_DETAIL_ITEMS]) + ".")
    return " ".join(parts)


def _analysis(waiver: WaiverEntry | None) -> dict[str, Any]:
    """A waiver is accepted risk: exploitable, will not fix, until it expires."""
    if waiver is None:
        return {"state": "exploitable", "response": ["will_not_fix"], "detail": "waived by the policy"}
    return {
        "state": "exploitable",
        "response": ["will_not_fix"],
        "detail": f"Waived by {waiver.owner} until {waiver.expires}: {waiver.reason}",
    }


def _vulnerability(fingerprint: str, seen: list[_Occurrence], waivers: dict[str, WaiverEntry]) -> dict:
    # the worst occurrence speaks for the group; on a tie, the newest version's (seen last)
    finding = max(enumerate(seen), key=lambda item: (item[1].finding.severity, item[0]))[1].finding
    advisory = finding.evidence.get("advisory") if finding.check == ADVISORY_CHECK else None
    vuln: dict[str, Any] = {"bom-ref": f"finding:{fingerprint}", "id": str(advisory or fingerprint)}
    vuln["source"] = (
        {"name": "OSV", "url": OSV_URL.format(quote(str(advisory)))} if advisory else {"name": "mlgate"}
    )
    references = _references(finding)
    if references:
        vuln["references"] = references
    vuln["ratings"] = _ratings(finding)
    vuln["description"] = finding.title
    vuln["detail"] = _detail(finding)
    if finding.remediation:
        vuln["recommendation"] = finding.remediation
    links = sorted({u for u in finding.evidence.get("references") or [] if _iri(u)})
    if advisory and links:
        vuln["advisories"] = [{"url": _iri(u)} for u in links]
    if finding.status == "waived":
        vuln["analysis"] = _analysis(waivers.get(fingerprint))
    vuln["affects"] = [{"ref": ref} for ref in sorted(set().union(*(o.affects for o in seen)))]
    vuln["properties"] = [
        _prop("fingerprint", fingerprint),
        _prop("check", finding.check),
        _prop("stage", finding.stage),
        _prop("status", finding.status),
        _prop("blocking", any(o.blocking for o in seen)),
    ]
    return vuln


def _occurrences(
    versions: list[VersionEntry], libraries: dict[str, dict[str, Any]]
) -> dict[str, list[_Occurrence]]:
    """Each finding of each version with the refs it affects and whether it blocks, by fingerprint."""
    by_fingerprint: dict[str, list[_Occurrence]] = {}
    for entry in versions:
        line = Severity.parse(entry.blocking_severity)
        ref = version_ref(entry)
        for finding, data in [(f, False) for f in entry.findings] + [(f, True) for f in entry.data_findings]:
            affects = {ref}
            if data and entry.dataset_digest:
                affects.add(dataset_ref(entry.dataset_digest))
            package, pinned = finding.evidence.get("package"), finding.evidence.get("version")
            if finding.check == ADVISORY_CHECK and package and pinned:
                library = package_ref(Package(str(package), str(pinned)))
                if library in libraries:
                    affects.add(library)
            blocking = finding.status != "waived" and finding.severity >= line
            by_fingerprint.setdefault(finding.fingerprint, []).append(_Occurrence(finding, affects, blocking))
    return by_fingerprint


# --- the document --------------------------------------------------------------------------------


def build_bom(
    inventory: Inventory, *, timestamp: dt.datetime | None = None, serial: str | None = None
) -> dict[str, Any]:
    """The CycloneDX 1.6 document of an inventory (a dict ready for strict JSON)."""
    versions = sorted(inventory.versions, key=lambda v: (v.name, _version_key(v.version)))
    datasets = {d.digest: d for d in sorted(inventory.datasets, key=lambda d: (d.name, d.digest))}
    libraries = _library_components(versions)
    components = [_version_component(v, datasets.get(v.dataset_digest or "")) for v in versions]
    components += [_dataset_component(d) for d in datasets.values()]
    components += [libraries[ref] for ref in sorted(libraries)]

    dependencies = []
    for entry in versions:
        needs = [dataset_ref(entry.dataset_digest)] if entry.dataset_digest in datasets else []
        needs += sorted({package_ref(p) for p in entry.packages or []})
        dependencies.append({"ref": version_ref(entry), "dependsOn": needs})
    dependencies += [{"ref": dataset_ref(d)} for d in datasets]

    grouped = _occurrences(versions, libraries)
    vulnerabilities = [_vulnerability(fp, seen, inventory.waivers) for fp, seen in grouped.items()]
    vulnerabilities.sort(key=lambda v: (-_severity_rank(v), v["id"], v["bom-ref"]))

    stamp = (timestamp or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    metadata: dict[str, Any] = {
        "timestamp": stamp.isoformat().replace("+00:00", "Z"),
        "tools": {
            "components": [{"type": "application", "name": "mlgate", "version": inventory.tool_version}]
        },
        "properties": [_prop("registry_uri", redact(inventory.registry_uri))]
        + ([_prop("policy_digest", inventory.policy_digest)] if inventory.policy_digest else []),
    }
    return {
        "$schema": SCHEMA_URL,
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": serial or f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": metadata,
        "components": components,
        "dependencies": dependencies,
        "vulnerabilities": vulnerabilities,
    }


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 62, version)


def _severity_rank(vuln: dict[str, Any]) -> int:
    return Severity.parse(vuln["ratings"][0]["severity"]).value


def dumps_bom(document: dict[str, Any]) -> str:
    """Strict JSON (no NaN), two-space indented, keys in the order built."""
    return json.dumps(document, indent=2, allow_nan=False)


def bom_counts(document: dict[str, Any]) -> dict[str, int]:
    """Component and vulnerability counts of a BOM (asset metadata, the CLI's summary)."""
    components = document["components"]
    vulns = document["vulnerabilities"]

    def status(v: dict[str, Any]) -> str:
        return next(p["value"] for p in v["properties"] if p["name"] == "mlgate:status")

    open_vulns = [v for v in vulns if status(v) == "open"]
    return {
        "models": len({c["name"] for c in components if c["type"] == "machine-learning-model"}),
        "versions": sum(c["type"] == "machine-learning-model" for c in components),
        "datasets": sum(c["type"] == "data" for c in components),
        "libraries": sum(c["type"] == "library" for c in components),
        "vulnerabilities": len(vulns),
        "open": len(open_vulns),
        "waived": len(vulns) - len(open_vulns),
        **{f"open_{s}": sum(v["ratings"][0]["severity"] == s for v in open_vulns) for s in SEVERITIES},
    }


def validate_bom(document: dict[str, Any]) -> list[str]:
    """Problems with a document: strict CycloneDX 1.6 schema errors, then dangling or duplicate refs.

    The library's validator resolves the schemas it references (SPDX, JSF, cryptography) from
    files it ships, so this works offline.
    """
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(dumps_bom(document), all_errors=True)
    problems = [
        f"{'/'.join(str(p) for p in e.data.absolute_path) or '(document)'}: {e.data.message}"
        for e in errors or []
    ]
    return problems + _reference_problems(document)


def _reference_problems(document: dict[str, Any]) -> list[str]:
    refs = Counter(c["bom-ref"] for c in document.get("components", []))
    refs.update(v["bom-ref"] for v in document.get("vulnerabilities", []))
    problems = [f"duplicate bom-ref {r}" for r in sorted(r for r, n in refs.items() if n > 1)]
    known = set(refs)
    used = [d["ref"] for d in document.get("dependencies", [])]
    used += [r for d in document.get("dependencies", []) for r in d.get("dependsOn", [])]
    used += [a["ref"] for v in document.get("vulnerabilities", []) for a in v.get("affects", [])]
    used += [
        d["ref"]
        for c in document.get("components", [])
        for d in c.get("modelCard", {}).get("modelParameters", {}).get("datasets", [])
    ]
    return problems + [f"unknown ref {r}" for r in sorted(set(used) - known)]
