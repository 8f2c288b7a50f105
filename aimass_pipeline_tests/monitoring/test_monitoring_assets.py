"""The monitoring assets on a real home: a registry champion, its drift reference in the lake, predictions
written by the real PredictionLogger, labels in the landing zone; then the drift sensor on the result."""

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from dagster import DagsterInstance, RunRequest, SkipReason, build_sensor_context, materialize

from aimass_pipeline.monitoring.assets import build_monitoring
from aimass_pipeline.monitoring.sensors import build_drift_sensor
from aimass_pipeline.orchestration.resources import (
    LabelsZoneResource,
    LakeIOManager,
    LakeResource,
    MlflowResource,
)
from aimass_pipeline.settings import Settings
from aimass_pipeline_tests.conftest import CREDIT_SPEC
from aimass_pipeline_tests.monitoring.traffic import FEATURES, SERVED, UC, serve, shift


def _materialize(settings: Settings, instance: DagsterInstance):
    lake = LakeResource(url=settings.lake_url)
    resources = {
        "lake": lake,
        "mlflow": MlflowResource(
            tracking_uri=settings.mlflow_tracking_uri, artifact_root=settings.mlflow_artifacts_uri
        ),
        "labels": LabelsZoneResource(root=str(settings.labels_root)),
        "io_manager": LakeIOManager(lake=lake),
    }
    result = materialize(build_monitoring(UC), resources=resources, instance=instance)
    assert result.success
    outputs = {
        name: result.output_for_node(f"{UC.name}__{name}") for name in ("feature_drift", "prediction_drift")
    }
    outputs["live_performance"] = result.output_for_node(f"{UC.name}__live_performance")
    metadata = {
        event.materialization.asset_key.path[-1]: event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    return outputs, metadata


def test_unshifted_traffic_shows_no_drift_and_labels_score_it(home) -> None:
    settings, unseen = home
    rows = unseen.iloc[:SERVED]
    ids = serve(settings, rows, "1")
    labels = settings.labels_root / UC.name
    labels.mkdir(parents=True)
    pd.DataFrame({"prediction_id": ids[:300], "Status": rows["Status"].iloc[:300]}).to_csv(
        labels / "outcomes.csv", index=False
    )

    with DagsterInstance.get() as instance:
        outputs, metadata = _materialize(settings, instance)

    feature, prediction, live = (
        outputs["feature_drift"],
        outputs["prediction_drift"],
        outputs["live_performance"],
    )
    assert not feature["retrain_recommended"], feature["reason"]
    assert feature["drifted_features"] == [] and len(feature["rows"]) == len(FEATURES)
    assert not prediction["retrain_recommended"], prediction["reason"]
    assert metadata["served_predictions"]["dagster/row_count"].value == SERVED
    assert metadata["feature_drift"]["plot"].value.startswith("![drift](data:image/png;base64,")
    plot = Path(metadata["feature_drift"]["plot_png"].value)
    assert (
        plot.parent == Path(settings.lake_url) / "reports" / UC.name and plot.read_bytes()[:4] == b"\x89PNG"
    )
    assert metadata["feature_drift"]["retrain_recommended"].value is False
    assert live["rows_matched"] == 300 and 0.5 < live["value"] < 1.0
    expected = live["value"] < CREDIT_SPEC.gate.floor
    assert (
        live["retrain_recommended"] is expected and metadata["live_performance"]["rows_matched"].value == 300
    )


def test_shifted_traffic_drifts_and_the_sensor_launches_one_retrain(home) -> None:
    settings, unseen = home
    serve(settings, shift(unseen.iloc[:SERVED]), "1")
    # Served by a version that is not the champion: not the champion's traffic, so not counted.
    serve(settings, unseen.iloc[SERVED : SERVED + 50], "0")

    with DagsterInstance.get() as instance:
        outputs, metadata = _materialize(settings, instance)
        feature = outputs["feature_drift"]
        assert feature["retrain_recommended"], feature["reason"]
        assert {"Age", "Amount", "Price", "Income"} <= set(feature["drifted_features"])
        assert "Home" not in feature["drifted_features"]
        assert outputs["prediction_drift"]["retrain_recommended"], outputs["prediction_drift"]["reason"]
        assert metadata["feature_drift"]["current_rows"].value == SERVED
        assert "retraining recommended" in metadata["feature_drift"]["report"].value
        assert (
            outputs["live_performance"]["rows_matched"] == 0
            and not outputs["live_performance"]["retrain_recommended"]
        )

        sensor = build_drift_sensor(UC)
        context = build_sensor_context(instance=instance)
        request = sensor(context)
        assert isinstance(request, RunRequest)
        assert request.tags["aimass/trigger"] == "drift"
        drift_run = instance.fetch_materializations(
            UC.key(request.tags["aimass/drift_asset"]), limit=1
        ).records[0]
        assert request.tags["aimass/drift_run_id"] == drift_run.run_id
        again = sensor(build_sensor_context(instance=instance, cursor=context.cursor))
        assert isinstance(again, SkipReason) and "already acted on" in again.skip_message


def test_too_few_rows_materialise_without_a_verdict(home) -> None:
    settings, unseen = home
    serve(settings, shift(unseen.iloc[:20]), "1")

    with DagsterInstance.get() as instance:
        outputs, metadata = _materialize(settings, instance)

    for name in ("feature_drift", "prediction_drift"):
        assert not outputs[name]["retrain_recommended"]
        assert "only 20 predictions by version 1" in outputs[name]["reason"]
    assert "plot" not in metadata["feature_drift"]


def test_a_label_landing_90_days_late_is_scored_and_a_re_flushed_part_counts_once(home) -> None:
    """Fault 8: outcomes arrive months after the prediction, far outside ``window_hours``; labels are joined
    to the whole prediction log. A part written twice (a retried flush under another name) counts once."""
    settings, unseen = home
    rows = unseen.iloc[:SERVED]
    long_ago = datetime.now(UTC) - timedelta(days=90)
    ids = serve(settings, rows, "1", at=long_ago)
    [part] = (Path(settings.lake_url) / "predictions" / UC.name).glob("date=*/hour=*/*.parquet")
    shutil.copy(part, part.with_name("re-flushed-" + part.name))
    labels = settings.labels_root / UC.name
    labels.mkdir(parents=True)
    pd.DataFrame({"prediction_id": ids[:300], "Status": rows["Status"].iloc[:300]}).to_csv(
        labels / "outcomes.csv", index=False
    )

    with DagsterInstance.get() as instance:
        outputs, metadata = _materialize(settings, instance)

    live = outputs["live_performance"]
    assert live["rows_matched"] == 300, f"{live['rows_matched']} of 300 late labels matched: {live['reason']}"
    assert live["by_version"]["1"]["rows"] == 300 and 0.5 < live["value"] < 1.0
    assert metadata["served_predictions"]["dagster/row_count"].value == 0, "90 days ago is outside the window"
