"""Policy files are validated on load with one clear message naming the file and field."""

from __future__ import annotations

import datetime as dt

import pytest

from checks.findings import Finding, Severity
from checks.policy import PolicyError, load_policy, parse_policy


def test_default_policy_is_valid_and_blocks_at_high() -> None:
    policy = load_policy()
    assert policy.blocking_line("any-model") == Severity.HIGH
    assert policy.checks.label_noise.max_noise_rate == 0.05


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("blocking_severity: severe\n", "blocking_severity: Value error, unknown severity 'severe'"),
        ("checks:\n  label_noise:\n    max_noise_rate: 1.5\n", "checks.label_noise.max_noise_rate"),
        ("checks:\n  label_nosie: {}\n", "checks.label_nosie: Extra inputs are not permitted"),
        ("detection_model:\n  estimator: xgboost\n", "detection_model.estimator"),
        ("waivers:\n  - fingerprint: abcdef0123\n    owner: me\n", "waivers.0.reason: Field required"),
        ("version: 2\n", "version"),
        (
            "waivers:\n  - {fingerprint: 0123abcd, owner: a, reason: b, expires: 2099-01-01}\n",
            "waivers.0.fingerprint: String should match pattern",
        ),
        ("- just\n- a list\n", "expected a mapping at the top level"),
        ("checks: [unclosed\n", "not valid YAML"),
    ],
)
def test_invalid_policies_are_rejected_with_the_field_named(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "team.yaml")
    assert str(info.value).startswith("team.yaml: ")
    assert message in str(info.value)


def test_missing_policy_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(PolicyError, match="policy file not found"):
        load_policy(tmp_path / "nope.yaml")


def test_digest_ignores_waivers_but_not_thresholds() -> None:
    base = parse_policy("")
    waived = parse_policy(
        "waivers:\n  - {fingerprint: 0123456789abcdef0123456789abcdef, owner: a, reason: b, "
        "expires: 2099-01-01}\n"
    )
    stricter = parse_policy("checks:\n  label_noise:\n    max_noise_rate: 0.01\n")
    assert base.digest == waived.digest
    assert base.digest != stricter.digest


def _finding(severity: str) -> Finding:
    return Finding(
        check="label_noise", severity=severity, title="t", stage="data", subject_identity="m", key="k"
    )


def test_only_an_unexpired_waiver_unblocks() -> None:
    finding = _finding("high")
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    active = parse_policy(
        f"waivers:\n  - {{fingerprint: {finding.fingerprint}, owner: sec, reason: ok, expires: {tomorrow}}}\n"
    )
    expired = parse_policy(
        f"waivers:\n  - {{fingerprint: {finding.fingerprint}, owner: sec, reason: ok, expires: 2020-01-01}}\n"
    )
    assert parse_policy("").verdict([_finding("high")], "m") == "blocked"
    assert active.verdict([_finding("high")], "m") == "passed"
    assert expired.verdict([_finding("high")], "m") == "blocked"


def test_per_model_blocking_line() -> None:
    policy = parse_policy("models:\n  lenient:\n    blocking_severity: critical\n")
    assert policy.verdict([_finding("high")], "lenient") == "passed"
    assert policy.verdict([_finding("high")], "other") == "blocked"
    assert policy.verdict([_finding("medium")], "other") == "passed"


def test_a_model_section_without_its_own_line_keeps_the_policy_wide_line() -> None:
    policy = parse_policy("blocking_severity: medium\nmodels:\n  demo:\n    owner: team\n")
    assert policy.blocking_line("demo") == Severity.MEDIUM
    assert policy.verdict([_finding("medium")], "demo") == "blocked"
