"""Data quality: a GX Core expectation suite per dataset, or a baseline contract when there is none.

Suites are JSON files beside the code (``suites/<dataset>.json``) in GX's own format; each
expectation may carry ``meta.severity``. An expectation that errors (a missing column, a bad
argument) is critical: the contract could not be verified.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from checks.findings import Finding, Severity

VERSION = "1"
CHECK = "data_quality"
TAXONOMY = {"owasp_ml": "ML02:2023", "atlas": "AML.T0020"}
SUITE_REMEDIATION = (
    "Fix the source data, or if the change is intended, update the expectation "
    "suite in review like any other code change."
)


class SuiteError(ValueError):
    """An expectation suite file that cannot be read or is not a valid suite."""


def load_suite(path: str | Path) -> dict[str, Any]:
    """Read a suite JSON file and check its shape; raises SuiteError naming the file and problem."""
    path = Path(path)
    try:
        suite = json.loads(path.read_text())
    except FileNotFoundError:
        raise SuiteError(f"{path}: suite file not found") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise SuiteError(f"{path}: not a readable JSON suite ({exc})") from None
    if not isinstance(suite, dict) or not isinstance(suite.get("expectations"), list):
        raise SuiteError(f"{path}: expected an object with an 'expectations' list")
    seen: dict[str, int] = {}
    for i, exp in enumerate(suite["expectations"]):
        if not isinstance(exp, dict) or not isinstance(exp.get("type"), str):
            raise SuiteError(f"{path}: expectation {i} has no 'type'")
        if not _known_expectation(exp["type"]):
            raise SuiteError(f"{path}: expectation {i}: unknown expectation type {exp['type']!r}")
        severity = (exp.get("meta") or {}).get("severity")
        if severity is not None:
            try:
                Severity.parse(severity)
            except ValueError as exc:
                raise SuiteError(f"{path}: expectation {i}: {exc}") from None
        key = _expectation_key(exp)
        if key in seen:  # GX keeps only one expectation per type and column: the other would vanish
            raise SuiteError(f"{path}: expectation {i} repeats expectation {seen[key]} ({key}); merge them")
        seen[key] = i
    suite.setdefault("name", path.stem)
    return suite


def _known_expectation(name: str) -> bool:
    from great_expectations.expectations.registry import get_expectation_impl

    try:
        get_expectation_impl(name)
    except Exception:  # noqa: BLE001 - GX raises its own not-found error type
        return False
    return True


def _expectation_key(exp: dict[str, Any]) -> str:
    kwargs = exp.get("kwargs") or {}
    column = kwargs.get("column") or ",".join(map(str, kwargs.get("column_list") or []))
    return f"{exp['type']}:{column}"


def _gx_validate(df: pd.DataFrame, suite: dict[str, Any]) -> list:
    """Run the suite on the frame through an ephemeral GX context; one result per expectation."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("mlgate")
        .add_dataframe_asset("data")
        .add_batch_definition_whole_dataframe("all")
    )
    name = suite.get("name", "suite")
    expectations = []
    for exp in suite["expectations"]:
        try:
            config = ExpectationConfiguration(
                type=exp["type"], kwargs=exp.get("kwargs", {}), meta=exp.get("meta") or {}
            )
            expectations.append(config.to_domain_obj())
        except Exception as exc:  # noqa: BLE001 - GX raises many types for a bad expectation
            raise SuiteError(f"suite {name!r}: invalid expectation {exp['type']}: {exc}") from None
    # one constructor call: adding expectations one by one is quadratic in GX (bench/RESULTS.md)
    gx_suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="mlgate", data=batch, suite=gx_suite)
    )
    result = definition.run(batch_parameters={"dataframe": df}, result_format={"result_format": "COMPLETE"})
    return result.results


def _raised(result) -> str | None:
    info = result.exception_info or {}
    entries = info.values() if all(isinstance(v, dict) for v in info.values()) else [info]
    for entry in entries:
        if entry.get("raised_exception"):
            return str(entry.get("exception_message") or "expectation raised an exception")
    return None


def validate_suite(
    df: pd.DataFrame,
    suite: dict[str, Any],
    *,
    subject_identity: str,
    default_severity: str = "high",
    subject: dict | None = None,
) -> list[Finding]:
    """One finding per failed expectation; an expectation that errors is critical.

    `evidence.rows` lists the unexpected rows (0-based file order) for column-value expectations.
    """
    findings = []
    for result in _gx_validate(df.reset_index(drop=True), suite):
        if result.success:
            continue
        config = result.expectation_config
        kwargs = dict(config.kwargs)
        column = kwargs.get("column") or ",".join(map(str, kwargs.get("column_list") or []))
        error = _raised(result)
        details = result.result or {}
        evidence: dict[str, Any] = {"expectation": config.type, "kwargs": kwargs}
        if error:
            severity, title = (
                Severity.CRITICAL,
                f"{config.type} on {column or 'table'} could not run: {error}",
            )
        else:
            severity = Severity.parse((config.meta or {}).get("severity") or default_severity)
            count = details.get("unexpected_count")
            title = f"{config.type} failed on {column or 'table'}" + (f" ({count} rows)" if count else "")
            for key in ("unexpected_count", "unexpected_percent", "observed_value"):
                if details.get(key) is not None:
                    evidence[key] = details[key]
            if details.get("unexpected_index_list") is not None:
                evidence["rows"] = [int(i) for i in details["unexpected_index_list"]]
        findings.append(
            Finding(
                check=CHECK,
                severity=severity,
                title=title,
                stage="data",
                subject_identity=subject_identity,
                key=f"{config.type}:{column}",
                subject=subject or {},
                evidence=evidence,
                taxonomy=TAXONOMY,
                remediation=SUITE_REMEDIATION,
            )
        )
    return findings


def baseline_contract(
    df: pd.DataFrame, label: str, *, subject_identity: str, min_rows: int = 50, subject: dict | None = None
) -> list[Finding]:
    """The data-independent contract that runs when a dataset has no suite.

    Labels non-null, enough rows, no all-null column, no infinities; plus an info finding that
    the dataset has no contract of its own.
    """

    def finding(severity: Severity, key: str, title: str, remediation: str, **evidence: Any) -> Finding:
        return Finding(
            check=CHECK,
            severity=severity,
            title=title,
            stage="data",
            subject_identity=subject_identity,
            key=key,
            subject=subject or {},
            evidence=evidence,
            taxonomy=TAXONOMY,
            remediation=remediation,
        )

    found = [
        finding(
            Severity.INFO,
            "no_suite",
            "Dataset has no expectation suite; baseline contract used",
            f"Draft one from trusted data with `mlgate suite init DATA --label {label}`, "
            "review it and keep it beside the code.",
        )
    ]
    null_labels = np.flatnonzero(df[label].isna().to_numpy())
    if len(null_labels):
        found.append(
            finding(
                Severity.HIGH,
                f"null_label:{label}",
                f"{len(null_labels)} rows have no label",
                "Label or drop these rows before training.",
                rows=null_labels.tolist(),
                column=label,
            )
        )
    if len(df) < min_rows:
        found.append(
            finding(
                Severity.HIGH,
                "too_few_rows",
                f"Only {len(df)} rows (minimum {min_rows})",
                "Collect more data or lower checks.data_quality.min_rows in the policy.",
                row_count=len(df),
                min_rows=min_rows,
            )
        )
    for column in df.columns[df.isna().all().to_numpy()]:
        found.append(
            finding(
                Severity.MEDIUM,
                f"all_null:{column}",
                f"Column {column!r} is entirely empty",
                "Drop the column or fix its source.",
                column=str(column),
            )
        )
    numeric = df.select_dtypes(include="number")
    if not numeric.empty:
        infinite = np.isinf(numeric.to_numpy(dtype=float, na_value=np.nan))
        for j in np.flatnonzero(infinite.any(axis=0)):
            rows = np.flatnonzero(infinite[:, j])
            column = str(numeric.columns[j])
            found.append(
                finding(
                    Severity.HIGH,
                    f"infinite:{column}",
                    f"Column {column!r} has {len(rows)} infinite values",
                    "Replace or drop infinite values at the source.",
                    rows=rows.tolist(),
                    column=column,
                )
            )
    return found


def draft_suite(df: pd.DataFrame, label: str, name: str, *, max_categories: int = 30) -> dict[str, Any]:
    """Draft an expectation suite from trusted data: schema, types, nulls, ranges, allowed values
    and uniqueness of key-like columns.

    Numeric ranges are widened by 10% of the observed span so ordinary new data passes; review
    the draft before committing it.
    """

    def exp(type_: str, severity: str, **kwargs: Any) -> dict[str, Any]:
        return {"type": type_, "kwargs": kwargs, "meta": {"severity": severity}}

    expectations = [
        exp(
            "expect_table_columns_to_match_set",
            "critical",
            column_set=[str(c) for c in df.columns],
            exact_match=True,
        )
    ]
    for column in df.columns:
        series = df[column]
        is_label = column == label
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            kind = "int" if pd.api.types.is_integer_dtype(series) else "float"
            types = (
                ["int", "int64", "int32", "INTEGER"]
                if kind == "int"
                else ["float", "float64", "float32", "int", "int64", "DOUBLE"]
            )
            expectations.append(
                exp("expect_column_values_to_be_in_type_list", "high", column=column, type_list=types)
            )
        if series.notna().all():
            expectations.append(
                exp("expect_column_values_to_not_be_null", "high" if is_label else "medium", column=column)
            )
        values = series.dropna()
        if values.empty:
            continue
        if not is_label and _is_key(values, len(series)):
            expectations.append(exp("expect_column_values_to_be_unique", "medium", column=column))
        if values.nunique() <= max_categories and (is_label or not pd.api.types.is_float_dtype(values)):
            allowed = sorted(values.unique().tolist(), key=str)
            expectations.append(
                exp(
                    "expect_column_values_to_be_in_set",
                    "high" if is_label else "medium",
                    column=column,
                    value_set=allowed,
                )
            )
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            low, high = float(values.min()), float(values.max())
            margin = 0.1 * (high - low)
            expectations.append(
                exp(
                    "expect_column_values_to_be_between",
                    "medium",
                    column=column,
                    min_value=low - margin,
                    max_value=high + margin,
                )
            )
    return json.loads(json.dumps({"name": name, "expectations": expectations}, default=_plain))


def _is_key(values: pd.Series, rows: int) -> bool:
    """A non-float column whose values are all present and distinct reads as a key."""
    return (
        len(values) == rows >= 20
        and not pd.api.types.is_float_dtype(values)
        and not pd.api.types.is_bool_dtype(values)
        and values.is_unique
    )


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
