"""The gate policy: a YAML file validated on load, its digest, and the verdict it implies."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from checks.findings import Finding, Severity

DEFAULT_POLICY_PATH = Path(__file__).with_name("default_policy.yaml")

DetectionEstimator = Literal[
    "auto", "svc", "logistic_regression", "random_forest", "hist_gradient_boosting", "knn"
]
Metric = Literal["accuracy", "balanced_accuracy", "f1_macro"]


class PolicyError(ValueError):
    """A policy file that cannot be read or does not validate; the message names file and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _severity(value: Any) -> str:
    return Severity.parse(value).label


class CheckConfig(_Strict):
    timeout_seconds: float = Field(300.0, gt=0)
    timeout_severity: str = "critical"
    _sev = field_validator("timeout_severity", mode="before")(_severity)


class DataQualityConfig(CheckConfig):
    min_rows: int = Field(50, ge=1)
    default_expectation_severity: str = "high"
    _sev2 = field_validator("default_expectation_severity", mode="before")(_severity)


class LabelNoiseConfig(CheckConfig):
    max_noise_rate: float = Field(0.05, ge=0, le=1)
    severity: str = "high"
    _sev2 = field_validator("severity", mode="before")(_severity)


class PerformanceConfig(CheckConfig):
    metric: Metric = "accuracy"
    tolerance: float = Field(0.02, ge=0, le=1)


class ArtifactSafetyConfig(CheckConfig):
    """The static scanner's extra trust and limits (checks.artifact_scan.ScanPolicy)."""

    # exact `module.name` entries of a team's own classes; the built-in denylist still wins
    allow: list[str] = []
    max_file_bytes: int = Field(2 * 1024**3, ge=1)
    max_total_bytes: int = Field(8 * 1024**3, ge=1)
    max_depth: int = Field(6, ge=1)
    max_compression_ratio: float = Field(200.0, gt=1)
    max_members: int = Field(10_000, ge=1)

    @field_validator("allow")
    @classmethod
    def _exact_names(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", v)]
        if bad:
            raise ValueError(f"allow entries must be exact module.name paths (no wildcards): {bad}")
        return sorted(set(value))

    def scan_policy(self):
        from checks.artifact_scan import ScanPolicy

        return ScanPolicy(
            allow=frozenset(self.allow),
            max_file_bytes=self.max_file_bytes,
            max_total_bytes=self.max_total_bytes,
            max_depth=self.max_depth,
            max_compression_ratio=self.max_compression_ratio,
            max_members=self.max_members,
        )


class PoisoningPolicy(CheckConfig):
    """Backdoor, conflicting-duplicate, targeted-flip and outlier detection on training data
    (checks.detectors.poisoning; the defaults are the ones measured in bench/RESULTS.md)."""

    neighbors: int = Field(10, ge=1)
    reference_rows: int = Field(10_000, ge=100)
    min_group_rows: int = Field(5, ge=2)
    seed: int = 0
    backdoor_purity: float = Field(0.9, gt=0, le=1)
    backdoor_min_foreign: float = Field(0.7, ge=0, le=1)
    backdoor_severity: str = "high"
    duplicate_tolerance: float = Field(0.05, ge=0)
    duplicate_medium_fraction: float = Field(0.001, ge=0, le=1)
    duplicate_high_fraction: float = Field(0.01, ge=0, le=1)
    flip_min_rate: float = Field(0.03, ge=0, le=1)
    flip_ratio: float = Field(4.0, ge=1)
    flip_severity: str = "high"
    outlier_threshold: float = Field(4.0, gt=0)
    outlier_severity: str = "low"
    _sev2 = field_validator("backdoor_severity", "flip_severity", "outlier_severity", mode="before")(
        _severity
    )

    def detector_config(self):
        from checks.detectors.poisoning import PoisoningConfig

        return PoisoningConfig(**self.model_dump(exclude={"timeout_seconds", "timeout_severity"}))


class RobustnessConfig(CheckConfig):
    """Black-box evasion on a holdout subsample (checks.detectors.robustness)."""

    def detector_kwargs(self) -> dict[str, Any]:
        return self.model_dump(exclude={"timeout_seconds", "timeout_severity"})

    epsilon: float = Field(0.1, gt=0)  # perturbation per numeric feature, in standard deviations
    sample_rows: int = Field(500, ge=500)
    min_robust_accuracy: float = Field(0.0, ge=0, le=1)
    max_accuracy_drop: float = Field(0.20, ge=0, le=1)
    champion_tolerance: float = Field(0.05, ge=0, le=1)
    noise_trials: int = Field(10, ge=1)
    boundary_neighbours: int = Field(5, ge=0)
    greedy_rounds: int = Field(1, ge=0)
    severity: str = "medium"  # warns by default; raise it to block brittle models
    seed: int = 0
    _sev2 = field_validator("severity", mode="before")(_severity)


class MembershipConfig(CheckConfig):
    """Loss-threshold membership inference, members = training rows (checks.detectors.privacy)."""

    sample_rows: int = Field(1000, ge=500)
    max_attack_auc: float = Field(0.6, ge=0.5, le=1)
    max_advantage: float = Field(0.25, ge=0, le=1)
    max_tpr_at_1pct_fpr: float = Field(0.05, ge=0, le=1)
    max_generalization_gap: float = Field(0.10, ge=0, le=1)
    severity: str = "medium"
    gap_severity: str = "low"
    bootstrap_rounds: int = Field(200, ge=0)
    seed: int = 0
    _sev2 = field_validator("severity", "gap_severity", mode="before")(_severity)

    def detector_kwargs(self) -> dict[str, Any]:
        return self.model_dump(exclude={"timeout_seconds", "timeout_severity"})


class DependencyConfig(CheckConfig):
    stale_after_days: float = Field(30.0, gt=0)  # an older advisory snapshot is a low finding


class ChecksConfig(_Strict):
    data_quality: DataQualityConfig = DataQualityConfig()
    label_noise: LabelNoiseConfig = LabelNoiseConfig()
    poisoning: PoisoningPolicy = PoisoningPolicy()
    artifact_safety: ArtifactSafetyConfig = ArtifactSafetyConfig(timeout_seconds=120)
    registry_validation: CheckConfig = CheckConfig(timeout_seconds=900)  # may re-run data checks
    performance: PerformanceConfig = PerformanceConfig()
    dependency_advisories: DependencyConfig = DependencyConfig(timeout_seconds=120)
    robustness: RobustnessConfig = RobustnessConfig(timeout_seconds=300)
    membership_inference: MembershipConfig = MembershipConfig(timeout_seconds=120)

    def for_check(self, name: str) -> CheckConfig:
        return getattr(self, name)


class DetectionModelConfig(_Strict):
    """The fast model whose out-of-fold probabilities feed label-noise and poisoning checks."""

    estimator: DetectionEstimator = "auto"
    kernel_max_rows: int = Field(10_000, ge=1)  # `auto` uses the SVM up to this many labelled rows
    max_folds: int = Field(5, ge=2, le=20)
    seed: int = 0


class ModelContext(_Strict):
    """Where the model runs: orders findings by contextual risk (checks.risk); never unblocks."""

    environment: Literal["production", "staging", "development"] = "production"
    exposure: Literal["public", "internal", "offline"] = "internal"
    data_sensitivity: Literal["high", "medium", "low", "public"] = "medium"


class Slas(_Strict):
    """Days to fix or waive a finding, by the risk band it falls in (None: no due date)."""

    critical: int | None = Field(7, ge=0)
    high: int | None = Field(30, ge=0)
    medium: int | None = Field(90, ge=0)
    low: int | None = Field(180, ge=0)
    info: int | None = Field(None, ge=0)


def _optional_severity(value: Any) -> str | None:
    return None if value is None else _severity(value)


class ModelPolicy(_Strict):
    blocking_severity: str | None = None  # None: the policy-wide line
    auto_promote: bool = True
    rollback_on_risk: bool = False  # move the alias back when a rescan blocks its holder
    alias: str = Field("champion", min_length=1)
    owner: str | None = None
    context: ModelContext = ModelContext()
    _sev = field_validator("blocking_severity", mode="before")(_optional_severity)


class Waiver(_Strict):
    fingerprint: str = Field(pattern=r"^[0-9a-f]{32}$")  # the full fingerprint, as reports show it
    owner: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    expires: dt.date

    def active(self, today: dt.date | None = None) -> bool:
        return (today or dt.date.today()) <= self.expires


class Retention(_Strict):
    """How long `mlgate gc` keeps unreferenced cache entries (None: forever). Anything a deployed
    version or an open finding references is kept whatever its age."""

    artifact_cache_days: int | None = Field(90, ge=0)
    datasets_days: int | None = Field(180, ge=0)


class Policy(_Strict):
    version: Literal[1] = 1
    blocking_severity: str = "high"
    detection_model: DetectionModelConfig = DetectionModelConfig()
    checks: ChecksConfig = ChecksConfig()
    models: dict[str, ModelPolicy] = {}
    waivers: list[Waiver] = []
    slas: Slas = Slas()
    retention: Retention = Retention()
    _sev = field_validator("blocking_severity", mode="before")(_severity)

    def for_model(self, name: str | None) -> ModelPolicy:
        """The per-model section (defaults when the model has none)."""
        return self.models.get(name or "", ModelPolicy())

    def blocking_line(self, model_name: str | None) -> Severity:
        """The model's own blocking line, else the policy-wide one."""
        return Severity.parse(self.for_model(model_name).blocking_severity or self.blocking_severity)

    @property
    def digest(self) -> str:
        """Hash of everything that changes what a scan finds or blocks (not waivers, context, SLAs).

        Waivers and context are applied at verdict time from the current policy, so changing them
        does not force a rescan; changing a threshold, a budget or the detection model does.
        """
        relevant = {
            "version": self.version,
            "blocking_severity": self.blocking_severity,
            "detection_model": self.detection_model.model_dump(mode="json"),
            "checks": self.checks.model_dump(mode="json"),
            "models": {k: self.blocking_line(k).label for k in sorted(self.models)},
        }
        canonical = json.dumps(relevant, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def with_waivers(self, extra: list[dict[str, Any]]) -> Policy:
        """This policy plus waivers granted elsewhere (the store's); a later waiver of the same
        fingerprint wins. Waivers are not part of the digest, so no rescan follows."""
        if not extra:
            return self
        added = [Waiver.model_validate(w) for w in extra]
        return self.model_copy(update={"waivers": [*self.waivers, *added]})

    def active_waivers(self, today: dt.date | None = None) -> dict[str, Waiver]:
        latest = {w.fingerprint: w for w in self.waivers}  # a later waiver (renewed, cut short) wins
        return {fp: w for fp, w in latest.items() if w.active(today)}

    def apply_waivers(self, findings: list[Finding], today: dt.date | None = None) -> list[Finding]:
        """Mark findings covered by an unexpired waiver as waived (others open); returns them."""
        waivers = self.active_waivers(today)
        for f in findings:
            f.status = "waived" if f.fingerprint in waivers else "open"
        return findings

    def blocks(self, finding: Finding, model_name: str | None) -> bool:
        return finding.status != "waived" and finding.severity >= self.blocking_line(model_name)

    def verdict(self, findings: list[Finding], model_name: str | None) -> str:
        """`blocked` if any open finding is at or above the model's blocking line, else `passed`."""
        self.apply_waivers(findings)
        return "blocked" if any(self.blocks(f, model_name) for f in findings) else "passed"


def _describe(error: ValidationError) -> str:
    parts = []
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML ({exc.__class__.__name__}: {exc})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(f"{source}: {_describe(exc)}") from None


def load_policy(path: str | Path | None = None) -> Policy:
    """Load and validate a policy file; None loads the embedded default policy."""
    target = Path(path) if path else DEFAULT_POLICY_PATH
    try:
        text = target.read_text()
    except FileNotFoundError:
        raise PolicyError(f"{target}: policy file not found") from None
    except OSError as exc:
        raise PolicyError(f"{target}: cannot read policy file ({exc.strerror})") from None
    return parse_policy(text, str(target))
