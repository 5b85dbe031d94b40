"""Compliance view: a scan report's findings mapped to OWASP ML Top 10, MITRE ATLAS, NIST AI RMF
and the EU AI Act (articles 9, 10 and 15).

OWASP and ATLAS items come from each finding's `taxonomy` and from what each check tests for
(`CHECK_COVERAGE`, kept in step with the detectors' TAXONOMY), so a check that passed shows the
items it assessed. ATLAS technique names are read from `../shared/data/mitre-atlas-5.6.0.yaml`
when it is present, else from a small built-in table; an unknown id is shown as is. NIST AI RMF
subcategories and EU AI Act articles are mapped by check (unknown checks by their OWASP id).

An item's status: `open` (an open finding maps to it), `waived` (only waived findings),
`passed` (a check assessing it ran and found nothing), `not_assessed` (no check that assesses it
completed). Pure: no Dagster or MLflow.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from checks.findings import Severity

ATLAS_YAML = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mitre-atlas-5.6.0.yaml"

OWASP = "OWASP ML Top 10 (2023)"
ATLAS = "MITRE ATLAS"
NIST = "NIST AI RMF 1.0"
EU = "EU AI Act"
FRAMEWORKS = (OWASP, ATLAS, NIST, EU)

OWASP_NAMES = {
    "ML01:2023": "Input Manipulation Attack",
    "ML02:2023": "Data Poisoning Attack",
    "ML03:2023": "Model Inversion Attack",
    "ML04:2023": "Membership Inference Attack",
    "ML05:2023": "Model Theft",
    "ML06:2023": "AI Supply Chain Attacks",
    "ML07:2023": "Transfer Learning Attack",
    "ML08:2023": "Model Skewing",
    "ML09:2023": "Output Integrity Attack",
    "ML10:2023": "Model Poisoning",
}

# Used when the ATLAS YAML is absent; names as in ATLAS 5.6.0 (a sub-technique as "parent: name").
ATLAS_FALLBACK = {
    "AML.T0010": "AI Supply Chain Compromise",
    "AML.T0010.001": "AI Supply Chain Compromise: AI Software",
    "AML.T0011": "User Execution",
    "AML.T0020": "Poison Training Data",
    "AML.T0024.000": "Exfiltration via AI Inference API: Infer Training Data Membership",
    "AML.T0031": "Erode AI Model Integrity",
    "AML.T0043": "Craft Adversarial Data",
}
ATLAS_FALLBACK_TACTICS = {
    "AML.T0010": "Initial Access",
    "AML.T0010.001": "Initial Access",
    "AML.T0011": "Execution",
    "AML.T0020": "Resource Development, Persistence",
    "AML.T0024.000": "Exfiltration",
    "AML.T0031": "Impact",
    "AML.T0043": "AI Attack Staging",
}

NIST_SUBCATEGORIES = {
    "GOVERN 1.6": ("Govern", "Mechanisms are in place to inventory AI systems"),
    "GOVERN 2.1": ("Govern", "Roles, responsibilities and lines of communication are documented"),
    "GOVERN 6.1": ("Govern", "Policies address AI risks of third-party entities (software, data, models)"),
    "MAP 2.3": ("Map", "Scientific integrity and TEVV considerations, incl. data collection and selection"),
    "MAP 4.1": ("Map", "Approaches for mapping risks of components, incl. third-party software and data"),
    "MEASURE 2.3": ("Measure", "Performance is measured for conditions similar to deployment"),
    "MEASURE 2.5": ("Measure", "The AI system is demonstrated to be valid and reliable"),
    "MEASURE 2.7": ("Measure", "Security and resilience are evaluated and documented"),
    "MEASURE 2.10": ("Measure", "Privacy risk is examined and documented"),
    "MANAGE 1.1": ("Manage", "Whether development or deployment should proceed is determined"),
    "MANAGE 1.3": ("Manage", "Responses to high-priority risks are planned and documented"),
    "MANAGE 3.1": ("Manage", "Risks from third-party resources are monitored and controls applied"),
}

EU_ARTICLES = {
    "Art. 9": "Risk management system",
    "Art. 10": "Data and data governance",
    "Art. 15": "Accuracy, robustness and cybersecurity",
}


@dataclass(frozen=True)
class Coverage:
    """What a check assesses in each framework."""

    owasp: tuple[str, ...] = ()
    atlas: tuple[str, ...] = ()
    nist: tuple[str, ...] = ()
    eu: tuple[str, ...] = ()


_DATA = Coverage(("ML02:2023",), ("AML.T0020",), ("MAP 2.3", "MEASURE 2.7"), ("Art. 9", "Art. 10", "Art. 15"))
CHECK_COVERAGE = {
    "data_quality": Coverage(
        ("ML02:2023",), ("AML.T0020",), ("MAP 2.3", "MEASURE 2.5"), ("Art. 9", "Art. 10")
    ),
    "label_noise": _DATA,
    "poisoning": _DATA,
    "artifact_safety": Coverage(
        ("ML06:2023",),
        ("AML.T0010", "AML.T0011"),
        ("GOVERN 6.1", "MEASURE 2.7", "MANAGE 3.1"),
        ("Art. 9", "Art. 15"),
    ),
    "registry_validation": Coverage(
        ("ML10:2023",), ("AML.T0010",), ("GOVERN 1.6", "GOVERN 2.1", "MAP 4.1"), ("Art. 9", "Art. 10")
    ),
    "dependency_advisories": Coverage(
        ("ML06:2023",), ("AML.T0010.001",), ("GOVERN 6.1", "MAP 4.1", "MANAGE 3.1"), ("Art. 9", "Art. 15")
    ),
    "performance": Coverage(
        ("ML08:2023",), ("AML.T0031",), ("MEASURE 2.3", "MEASURE 2.5", "MANAGE 1.1"), ("Art. 9", "Art. 15")
    ),
    "robustness": Coverage(
        ("ML01:2023",), ("AML.T0043",), ("MEASURE 2.5", "MEASURE 2.7"), ("Art. 9", "Art. 15")
    ),
    "membership_inference": Coverage(
        ("ML04:2023",), ("AML.T0024.000",), ("MEASURE 2.7", "MEASURE 2.10"), ("Art. 9", "Art. 15")
    ),
}
# A check mlgate does not know yet: NIST and EU items from its OWASP id.
BY_OWASP = {
    "ML01:2023": CHECK_COVERAGE["robustness"],
    "ML02:2023": _DATA,
    "ML04:2023": CHECK_COVERAGE["membership_inference"],
    "ML06:2023": CHECK_COVERAGE["dependency_advisories"],
    "ML08:2023": CHECK_COVERAGE["performance"],
}
DEFAULT_COVERAGE = Coverage(nist=("MEASURE 2.7",), eu=("Art. 9",))
COMPLETED = ("passed", "failed", "warned")  # a check in one of these statuses assessed its items


@dataclass
class Item:
    """One row of the compliance view."""

    framework: str
    ref: str
    name: str
    group: str = ""  # NIST function, ATLAS tactics
    checks: set[str] = field(default_factory=set)
    findings: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self, check_status: dict[str, str]) -> dict[str, Any]:
        return {
            "framework": self.framework,
            "ref": self.ref,
            "name": self.name,
            "group": self.group,
            "checks": sorted(self.checks),
            "findings": sorted(self.findings, key=_finding_order),
            "status": _status(self.findings, [check_status.get(c) for c in self.checks]),
        }


def _finding_order(finding: dict[str, Any]) -> tuple:
    """Open before waived, most severe first."""
    try:
        rank = int(Severity.parse(finding["severity"]))
    except ValueError:
        rank = -1
    return (finding["status"] == "waived", -rank, str(finding["title"]))


def _status(findings: list[dict[str, Any]], statuses: list[str | None]) -> str:
    if any(f["status"] != "waived" for f in findings):
        return "open"
    if findings:
        return "waived"
    return "passed" if any(s in COMPLETED for s in statuses) else "not_assessed"


# -- ATLAS names ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Atlas:
    """ATLAS technique names and tactics by id, and where they came from."""

    source: str
    names: dict[str, str]
    tactics: dict[str, str]

    def name(self, technique: str) -> str:
        return self.names.get(technique, technique)


@functools.lru_cache(maxsize=4)
def load_atlas(path: Path | None = ATLAS_YAML) -> Atlas:
    """Technique names (sub-techniques as "parent: name") and tactics from the ATLAS YAML; the
    built-in table when the file is absent or unreadable."""
    if path is None or not Path(path).is_file():
        return _fallback("built-in table")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=loader)  # a safe loader
        return _atlas_from(data)
    except (OSError, yaml.YAMLError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
        return _fallback(f"built-in table ({path} unreadable: {exc})")


def _fallback(source: str) -> Atlas:
    return Atlas(source, dict(ATLAS_FALLBACK), dict(ATLAS_FALLBACK_TACTICS))


def _atlas_from(data: dict[str, Any]) -> Atlas:
    techniques: dict[str, dict[str, Any]] = {}
    tactic_names: dict[str, str] = {}
    for matrix in data["matrices"]:
        tactic_names |= {t["id"]: t["name"] for t in matrix.get("tactics", [])}
        techniques |= {t["id"]: t for t in matrix.get("techniques", [])}
    names, tactics = {}, {}
    for tid, t in techniques.items():
        parent = techniques.get(t.get("subtechnique-of") or "")
        names[tid] = f"{parent['name']}: {t['name']}" if parent else t["name"]
        ids = (parent or t).get("tactics", [])
        tactics[tid] = ", ".join(tactic_names.get(i, i) for i in ids)
    return Atlas(f"MITRE ATLAS {data.get('version', '')}".strip(), names, tactics)


# -- the view ------------------------------------------------------------------------------------


def coverage_of(check: str, taxonomy: dict[str, str] | None = None) -> Coverage:
    """The framework items a check assesses; an unknown check's from its OWASP id."""
    if check in CHECK_COVERAGE:
        return CHECK_COVERAGE[check]
    owasp = (taxonomy or {}).get("owasp_ml", "")
    return BY_OWASP.get(owasp, DEFAULT_COVERAGE)


def taxonomy_names(taxonomy: dict[str, str], atlas: Atlas | None = None) -> dict[str, str]:
    """Human names of a finding's taxonomy ids, e.g. {"owasp_ml": "ML02:2023 Data Poisoning Attack"}."""
    atlas = atlas or load_atlas()
    out = {}
    if owasp := taxonomy.get("owasp_ml"):
        out["owasp_ml"] = f"{owasp} {OWASP_NAMES.get(owasp, '')}".strip()
    if technique := taxonomy.get("atlas"):
        name = atlas.name(technique)
        out["atlas"] = technique if name == technique else f"{technique} {name}"
    return out


def compliance_view(report: dict[str, Any], atlas: Atlas | None = None) -> list[dict[str, Any]]:
    """Rows {framework, ref, name, group, checks, findings, status}, in framework then ref order.

    `findings` holds brief entries (fingerprint, title, severity, check, status) of every finding
    of the report mapped to the item.
    """
    atlas = atlas or load_atlas()
    items: dict[tuple[str, str], Item] = {}
    check_status = {c["name"]: c["status"] for c in report.get("checks", [])}
    for check in check_status:
        _cover(items, atlas, check, coverage_of(check), None)
    for finding in report.get("findings", []):
        taxonomy = finding.get("taxonomy") or {}
        coverage = _with_taxonomy(coverage_of(finding["check"], taxonomy), taxonomy)
        _cover(items, atlas, finding["check"], coverage, _brief(finding))
    rows = [item.as_dict(check_status) for item in items.values()]
    return sorted(rows, key=lambda r: (FRAMEWORKS.index(r["framework"]), _ref_key(r["ref"])))


def _with_taxonomy(coverage: Coverage, taxonomy: dict[str, str]) -> Coverage:
    """The check's coverage narrowed to the finding's own OWASP and ATLAS ids, when it names them."""
    owasp = (taxonomy["owasp_ml"],) if taxonomy.get("owasp_ml") else coverage.owasp
    atlas = (taxonomy["atlas"],) if taxonomy.get("atlas") else coverage.atlas
    return Coverage(owasp, atlas, coverage.nist, coverage.eu)


def _cover(
    items: dict[tuple[str, str], Item],
    atlas: Atlas,
    check: str,
    coverage: Coverage,
    finding: dict[str, Any] | None,
) -> None:
    for framework, refs in (
        (OWASP, coverage.owasp),
        (ATLAS, coverage.atlas),
        (NIST, coverage.nist),
        (EU, coverage.eu),
    ):
        for ref in refs:
            if (framework, ref) not in items:
                items[framework, ref] = _item(framework, ref, atlas)
            item = items[framework, ref]
            item.checks.add(check)
            if finding is not None:
                item.findings.append(finding)


def _item(framework: str, ref: str, atlas: Atlas) -> Item:
    if framework == OWASP:
        return Item(framework, ref, OWASP_NAMES.get(ref, ref))
    if framework == ATLAS:
        return Item(framework, ref, atlas.name(ref), atlas.tactics.get(ref, ""))
    if framework == NIST:
        function, text = NIST_SUBCATEGORIES.get(ref, (ref.split(" ")[0].title(), ref))
        return Item(framework, ref, text, function)
    return Item(framework, ref, EU_ARTICLES.get(ref, ref))


def _brief(finding: dict[str, Any]) -> dict[str, Any]:
    keys = ("fingerprint", "title", "severity", "check")
    return {**{k: finding.get(k) for k in keys}, "status": finding.get("status") or "open"}


def _ref_key(ref: str) -> tuple:
    """Natural order: NIST functions in Govern, Map, Measure, Manage order, then numbers."""
    order = {"GOVERN": 0, "MAP": 1, "MEASURE": 2, "MANAGE": 3}
    head, _, tail = ref.partition(" ")
    numbers = tuple(int(p) if p.isdigit() else 0 for p in tail.replace(".", " ").split())
    return (order.get(head, 9), head if head not in order else "", numbers, ref)


def worst_severity(findings: Iterable[dict[str, Any]]) -> str | None:
    """The most severe open finding's severity label (None when none is open)."""
    open_ = [Severity.parse(f["severity"]) for f in findings if f.get("status") != "waived"]
    return max(open_).label if open_ else None
