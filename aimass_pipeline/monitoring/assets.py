"""Monitoring: the drift reference each promotion writes; what the champion served in the last hours, how far
it drifted from its training data, and how it scores once the outcomes land. Each report carries
``retrain_recommended``, which the drift sensor reads."""

import base64
from datetime import UTC, datetime, timedelta

import pandas as pd
from dagster import AssetExecutionContext, MetadataValue, asset

from aimass_pipeline.core.registry import champion_version
from aimass_pipeline.monitoring.drift import DriftReport
from aimass_pipeline.monitoring.live_performance import live_performance, read_labels
from aimass_pipeline.monitoring.reference import load_reference, save_reference
from aimass_pipeline.monitoring.reports import (
    Compare,
    as_dict,
    compare_features,
    compare_predictions,
    too_few,
)
from aimass_pipeline.monitoring.served import predictions_by_id, read_predictions
from aimass_pipeline.orchestration.resources import LabelsZoneResource, LakeResource, MlflowResource
from aimass_pipeline.orchestration.use_case import MONITORING_GROUP, UseCase


def _champion_window(
    uc: UseCase, served: pd.DataFrame, mlflow: MlflowResource
) -> tuple[str | None, pd.DataFrame]:
    """The champion's version and the window's predictions it served itself: traffic answered by an older
    version says nothing about the model now in place, and a fresh champion starts a fresh window."""
    champion = champion_version(mlflow.client(), uc.name)
    if champion is None:
        return None, served.iloc[0:0]
    version = str(champion.version)
    return version, served[served["model_version"].astype(str) == version].reset_index(drop=True)


def _report_metadata(
    report: DriftReport, version: str | None, png: bytes | None, lake: LakeResource, uc: UseCase
) -> dict:
    metadata = {
        "retrain_recommended": report.retrain_recommended,
        "reason": report.reason,
        "champion_version": str(version),
        "reference_rows": report.reference_rows,
        "current_rows": report.current_rows,
        "drifted_features": MetadataValue.json(report.drifted_features),
        "drifted_share": float(report.drifted_share),
        "max_psi": float(report.max_psi),
        "report": MetadataValue.md(report.as_markdown()),
    }
    if png is not None:
        name = report.subject.replace(" ", "_")
        store = lake.lake()
        location = store.write_bytes(png, "reports", uc.name, f"{name}.png")
        metadata["plot"] = MetadataValue.md(
            f"![drift](data:image/png;base64,{base64.b64encode(png).decode()})"
        )
        metadata["plot_png"] = MetadataValue.path(location)
    return metadata


def build_monitoring(uc: UseCase) -> list:
    monitoring = uc.spec.monitoring
    classes = list(uc.contract.classes)

    @asset(name="served_predictions", key_prefix=uc.name, group_name=MONITORING_GROUP, kinds={"pandas"})
    def served_predictions(context: AssetExecutionContext, lake: LakeResource) -> pd.DataFrame:
        """The use case's prediction log over the last ``window_hours``."""
        end = datetime.now(UTC)
        start = end - timedelta(hours=monitoring.window_hours)
        store = lake.lake()
        frame = read_predictions(store.fs, store.root, uc.name, start, end)
        versions = frame["model_version"].astype(str).value_counts().sort_index()
        context.add_output_metadata(
            {
                "dagster/row_count": len(frame),
                "window_start": start.isoformat(),
                "window_end": end.isoformat(),
                "rows_by_model_version": MetadataValue.json({k: int(v) for k, v in versions.items()}),
            }
        )
        return frame

    def drift_asset(name: str, subject: str, compare: Compare, description: str):
        @asset(
            name=name,
            key_prefix=uc.name,
            ins=uc.ins("served_predictions"),
            group_name=MONITORING_GROUP,
            description=description,
        )
        def drift_report(
            context: AssetExecutionContext,
            served_predictions: pd.DataFrame,
            lake: LakeResource,
            mlflow: MlflowResource,
        ) -> dict:
            # The champion's own window of traffic against its reference, or no verdict on too little.
            version, current = _champion_window(uc, served_predictions, mlflow)
            report = too_few(uc.name, monitoring, subject, version, len(current))
            png = None
            if report is None:
                reference = load_reference(lake.lake(), uc.name, version, classes)
                report, png, reference_uri = compare(reference, current, uc.contract, monitoring)
                context.add_output_metadata({"reference_uri": reference_uri})
            context.add_output_metadata(_report_metadata(report, version, png, lake, uc))
            return as_dict(report, version)

        return drift_report

    feature_drift_report = drift_asset(
        "feature_drift",
        "feature drift",
        compare_features,
        "PSI and KS (numeric) or chi-square (categorical) per feature, against the champion's training data.",
    )
    prediction_drift_report = drift_asset(
        "prediction_drift",
        "prediction drift",
        compare_predictions,
        "Served predictions against the champion's own predictions on its holdout.",
    )

    @asset(
        name="live_performance",
        key_prefix=uc.name,
        ins=uc.ins("served_predictions"),
        group_name=MONITORING_GROUP,
    )
    def live_performance_report(
        context: AssetExecutionContext,
        served_predictions: pd.DataFrame,
        labels: LabelsZoneResource,
        lake: LakeResource,
        mlflow: MlflowResource,
    ) -> dict:
        """The spec's metric on served predictions (any time, not only the window) whose outcome landed in the
        labels zone; retraining is
        recommended when the champion's live score, on enough labelled rows, falls below the gate's floor."""
        folder = labels.location(uc.name)
        landed = read_labels(folder, uc.contract.target, classes)
        version, _ = _champion_window(uc, served_predictions, mlflow)
        # Outcomes land months after the prediction: join them to the whole log, not the window.
        store = lake.lake()
        labelled = predictions_by_id(store.fs, store.root, uc.name, landed["prediction_id"])
        result = live_performance(
            labelled, landed, uc.contract.target, classes, uc.spec.metric, rows_served=len(served_predictions)
        )
        champion = result.by_version.get(str(version), {"rows": 0, "value": None})
        enough = champion["rows"] >= monitoring.min_rows
        below = enough and champion["value"] is not None and champion["value"] < uc.spec.gate.floor
        if below:
            reason = f"champion v{version} scores {champion['value']:.4f} live, below the floor {uc.spec.gate.floor}"
        elif not enough:
            reason = (
                f"{champion['rows']} labelled predictions by v{version} (< min_rows {monitoring.min_rows})"
            )
        else:
            reason = f"champion v{version} at or above the floor {uc.spec.gate.floor}"
        context.add_output_metadata(
            {
                "retrain_recommended": below,
                "reason": reason,
                "champion_version": str(version),
                "metric": uc.spec.metric,
                "value": MetadataValue.float(result.value)
                if result.value is not None
                else MetadataValue.null(),
                "champion_value": MetadataValue.float(champion["value"])
                if champion["value"] is not None
                else MetadataValue.null(),
                "rows_matched": result.rows_matched,
                "rows_labelled": result.rows_labelled,
                "rows_predicted": result.rows_predicted,
                "labels_folder": MetadataValue.path(folder.url()),
                "report": MetadataValue.md(result.as_markdown()),
            }
        )
        return {
            "champion_version": version,
            "retrain_recommended": below,
            "reason": reason,
            "metric": result.metric,
            "value": result.value,
            "rows_matched": result.rows_matched,
            "by_version": result.by_version,
        }

    return [served_predictions, feature_drift_report, prediction_drift_report, live_performance_report]


REFERENCE_TAG = "aimass.drift_reference"


def build_reference(uc: UseCase) -> list:
    """The drift reference of each registered version, written by the lifecycle run that registered it."""

    # Group "registration", not "monitoring": it belongs to the run that trains and registers (lifecycle and
    # retrain jobs), where the training set in hand is the one the new version was fitted on.
    @asset(
        name="champion_reference",
        key_prefix=uc.name,
        ins=uc.ins("training_set", "candidate_evaluation", "champion_model"),
        group_name="registration",
        kinds={"pandas"},
    )
    def champion_reference(
        context: AssetExecutionContext,
        training_set: pd.DataFrame,
        candidate_evaluation: dict,
        champion_model: dict,
        lake: LakeResource,
        mlflow: MlflowResource,
    ) -> dict:
        """What drift is measured against: the registered version's training features and holdout predictions.

        Written for every registered version, promoted or not: an operator may promote a version the gate
        refused (`aimass promote`), and monitoring must then have that version's own reference."""
        champion = champion_model["champion_version"]
        version = str(champion_model["version"])
        reference = save_reference(
            lake.lake(),
            uc.name,
            version,
            training_set[uc.contract.feature_names],
            candidate_evaluation["best_proba"],
            list(uc.contract.classes),
            uc.spec.seed,
        )
        mlflow.client().set_model_version_tag(uc.name, version, REFERENCE_TAG, reference.features_uri)
        context.add_output_metadata(
            {
                "written": True,
                "version": version,
                "promoted": bool(champion_model["promoted"]),
                "champion_version": str(champion),
                "dagster/row_count": len(reference.features),
                "holdout_predictions": len(reference.proba),
                "features_uri": reference.features_uri,
                "predictions_uri": reference.predictions_uri,
            }
        )
        return {
            "version": version,
            "written": True,
            "champion_version": None if champion is None else str(champion),
            "features_uri": reference.features_uri,
        }

    return [champion_reference]
