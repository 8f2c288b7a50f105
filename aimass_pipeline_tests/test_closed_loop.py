"""The closed loop, end to end on real servers: a served champion, drifted traffic, the monitoring job finds the
drift, the drift sensor launches the retrain job, the gate promotes, and the same running endpoint answers with
the new version under steady load without a failed request.

The use case is breast_cancer with one fast family and a permissive gate (alpha 0.99, no minimum gain): the
loop's plumbing is under test here, the gate's statistics in lib/test_gate. A retrain on unchanged data gives
the same model, which the gate rightly refuses; so, as in production, labelled data from the drifted population
is in the raw zone when the drift is found: a batch collected without a training run of its own (what
`aimass run` does for every pending batch but the newest).
"""

import subprocess
import time

import pandas as pd
import requests
import yaml
from dagster import DagsterInstance, RunRequest

from aimass_pipeline.collection.datasets import packaged_frame
from aimass_pipeline.collection.sensors import landing_tick
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.specs import PACKAGED_SPECS
from aimass_pipeline.definitions import build_definitions
from aimass_pipeline.monitoring.jobs import monitoring_outputs, run_monitoring, tick_drift_sensor
from aimass_pipeline.orchestration.use_case import UseCase
from aimass_pipeline.settings import Settings
from aimass_pipeline_tests.bento_server import SteadyLoad, bento_server, steady_loads
from aimass_pipeline_tests.conftest import AIMASS, ROOT, env_for

UC = "loop_cancer"
POLL_S = 1.0


def _write_spec(settings: Settings) -> dict:
    spec = yaml.safe_load((PACKAGED_SPECS / "breast_cancer.yaml").read_text())
    spec.update(
        name=UC,
        families={"logreg": {"params": {"C": 1.0}, "trials": 0}},
        ensemble=False,
        compression={"enabled": False},
        gate={"floor": 0.8, "min_delta": 0.0, "alpha": 0.99},
        monitoring={"min_rows": 100, "cooldown_s": 0, "window_hours": 1, "drifted_feature_share": 0.2},
    )
    folder = settings.home / "specs"
    folder.mkdir(exist_ok=True)
    (folder / f"{UC}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return spec


def _drifted(data: pd.DataFrame, contract) -> pd.DataFrame:
    """Larger tumours than anything the champion was trained on, still inside the contract's ranges."""
    out = data.copy()
    for column in contract.features:
        out[column.name] = (data[column.name].astype(float) * 1.6).clip(upper=column.max)
    out[contract.key] = "drifted-" + data[contract.key].astype(str)
    return out


def _collect_only(settings: Settings, uc: UseCase, frame: pd.DataFrame, defs) -> None:
    frame.to_csv(settings.landing_dir(uc.name) / f"{uc.name}_drifted.csv", index=False)
    [request] = landing_tick(
        uc, settings.landing_dir(uc.name), Lake(settings.lake_url), None, settle_s=0
    ).requests
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(uc.batches.name, [request.partition_key])
        collected = defs.resolve_job_def(f"{uc.name}_lifecycle").execute_in_process(
            instance=instance,
            partition_key=request.partition_key,
            run_config=request.run_config,
            asset_selection=[uc.key(uc.raw_batch)],
        )
    assert collected.success


def _records(frame: pd.DataFrame, features: list[str]) -> list[dict]:
    return frame[features].astype(float).to_dict("records")


def test_drift_retrains_and_the_running_endpoint_swaps_to_the_new_champion(aimass_home: Settings) -> None:
    settings = aimass_home
    spec = _write_spec(settings)
    first = subprocess.run(
        [AIMASS, "run", "--use-case", UC],
        env=env_for(settings.home),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    specs = settings.use_case_specs()
    uc = UseCase(specs[UC])
    contract = uc.contract
    features = contract.feature_names
    data = packaged_frame(spec["data"]["seed_source"], contract)
    drifted = _drifted(data, contract)
    defs = build_definitions(specs)
    _collect_only(settings, uc, drifted, defs)

    env = settings.child_env() | {"AIMASS_CHAMPION_POLL_S": str(POLL_S), "AIMASS_PREDICTION_FLUSH_S": "0.2"}
    with bento_server(settings, UC, settings.home / "serve.log", env) as server:
        url = server.url
        # The closed loop's client: ten requests a second, as the swap must not fail a single one.
        load = SteadyLoad(url, _records(data.iloc[:1], features)[0], rate=10.0)
        with steady_loads(load):
            for start in range(0, 300, 50):
                response = requests.post(
                    f"{url}/predict", json={"records": _records(drifted.iloc[start : start + 50], features)}
                )
                assert response.status_code == 200, response.text
                assert response.json()["model_version"] == "1"
            time.sleep(1.0)  # two flushes of the prediction log

            with DagsterInstance.get() as instance:
                detected_at = time.monotonic()
                reports = monitoring_outputs(run_monitoring(uc, instance, defs), UC)
                assert reports["feature_drift"]["retrain_recommended"], reports["feature_drift"]["reason"]
                request, _ = tick_drift_sensor(defs, UC, instance)
                assert isinstance(request, RunRequest), request
                assert request.tags["aimass/trigger"] == "drift"
                retrain = defs.resolve_job_def(f"{UC}_retrain").execute_in_process(
                    instance=instance, run_config=request.run_config or {}, tags=request.tags
                )
            champion = retrain.output_for_node(f"{UC}__champion_model")
            assert str(champion["champion_version"]) == "2", champion["decision"]
            promoted_at = time.monotonic()
            swapped_at = promoted_at + load.first_answer_from("2", promoted_at, timeout_s=POLL_S + 30)
            time.sleep(1.0)

    assert load.failures == [], load.failures[:5]
    versions = [v for _, v in load.answers]
    changes = [b for a, b in zip(versions, versions[1:], strict=False) if a != b]
    assert changes == ["2"], changes
    print(
        f"drift to new version answering: {swapped_at - detected_at:.1f} s "
        f"(monitoring + retrain {promoted_at - detected_at:.1f} s, swap {swapped_at - promoted_at:.1f} s); "
        f"{len(versions)} steady requests, 0 failed"
    )
