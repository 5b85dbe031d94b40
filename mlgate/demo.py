"""`make run`: the main job end to end on the bundled data, with its promise checked.

1. `mlgate run` on the bundled data: must pass and become the champion.
2. `mlgate run` again with label noise injected well above the default threshold: must be
   blocked at the data stage, before training.
3. MLflow must show the champion still on the first version and no new version registered.
Exits non-zero when any of this does not hold.
"""

from __future__ import annotations

import sys

from checks.report import render_text

NOISE = 0.3  # six times the default max_noise_rate (0.05)


def _registry_state(model_name: str, alias: str) -> tuple[str | None, int]:
    from mlflow import MlflowClient

    from pipelines.settings import load_settings

    settings = load_settings()
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)
    versions = client.search_model_versions(f"name = '{model_name}'")
    try:
        holder = str(client.get_model_version_by_alias(model_name, alias).version)
    except Exception:  # noqa: BLE001 - alias not set
        holder = None
    return holder, max((int(v.version) for v in versions), default=0)


def main() -> int:
    from mlgate import api
    from pipelines.settings import DEFAULT_MODEL_NAME, load_settings

    print("== 1. retrain on the bundled data ==", flush=True)
    clean = api.run()
    print(render_text(clean.report), *clean.notes, sep="\n")
    version = str(clean.report["subject"].get("version"))
    print(f"\n== 2. retrain with {NOISE:.0%} of labels flipped ==", flush=True)
    noisy = api.run(inject_label_noise=NOISE)
    print(render_text(noisy.report), *noisy.notes, sep="\n")

    holder, latest = _registry_state(DEFAULT_MODEL_NAME, "champion")
    problems = []
    if clean.verdict != "passed":
        problems.append(f"the clean retrain was {clean.verdict}, expected passed")
    if noisy.verdict != "blocked":
        problems.append(f"the poisoned retrain was {noisy.verdict}, expected blocked")
    if holder != version:
        problems.append(f"champion points to v{holder}, expected v{version}")
    if str(latest) != version:
        problems.append(f"latest registered version is v{latest}, expected no version after v{version}")
    print("\n== summary ==")
    print(f"clean retrain:    {clean.verdict} (v{version})")
    print(f"poisoned retrain: {noisy.verdict} (nothing registered: latest is v{latest})")
    print(f"champion:         v{holder}")
    print(f"state:            {load_settings().home}")
    print(
        "open the UI:      make ui  (then http://127.0.0.1:3000; runs, checks and findings of both retrains)"
    )
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
