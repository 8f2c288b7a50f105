"""Monitoring: what the champion served in the last hours, how far it drifted from its training data, and how
it scores once the outcomes land. Each report carries ``retrain_recommended``, which the drift sensor reads."""

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pandas as pd
from dagster import AssetExecutionContext, MetadataValue, asset

from aimass_pipeline.lib.drift import DriftReport, feature_drift, prediction_drift, served_features
from aimass_pipeline.lib.drift_plots import drift_png
from aimass_pipeline.lib.drift_reference import DriftReference, load_reference
from aimass_pipeline.lib.live_performance import live_performance, read_labels
from aimass_pipeline.lib.prediction_log import read_predictions
from aimass_pipeline.lib.registry import champion_version
from aimass_pipeline.resources import LabelsZoneResource, LakeResource, MlflowResource
from aimass_pipeline.use_case import UseCase

GROUP = "monitoring"


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


def _too_few(uc: UseCase, subject: str, version: str | None, rows: int) -> DriftReport | None:
    monitoring = uc.spec.monitoring
    if version is None:
        return DriftReport(subject, 0, rows, reason=f"{uc.name} has no champion yet")
    if rows < monitoring.min_rows:
        return DriftReport(
            subject,
            0,
            rows,
            reason=f"only {rows} predictions by version {version} in the last {monitoring.window_hours} h "
            f"(< min_rows {monitoring.min_rows}); too few to judge",
        )
    return None


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


def _as_dict(report: DriftReport, version: str | None) -> dict:
    return {
        "champion_version": version,
        "retrain_recommended": report.retrain_recommended,
        "reason": report.reason,
        "drifted_features": report.drifted_features,
        "drifted_share": report.drifted_share,
        "rows": [row.__dict__ for row in report.rows],
    }


def build_monitoring(uc: UseCase) -> list:
    monitoring = uc.spec.monitoring
    classes = list(uc.contract.classes)

    @asset(name="served_predictions", key_prefix=uc.name, group_name=GROUP, kinds={"pandas"})
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

    def judged(
        context: AssetExecutionContext,
        subject: str,
        served: pd.DataFrame,
        lake: LakeResource,
        mlflow: MlflowResource,
        compare: Callable[[DriftReference, pd.DataFrame], tuple[DriftReport, bytes, str]],
    ) -> dict:
        """The champion's own window of traffic against its reference, or no verdict when there is too little."""
        version, current = _champion_window(uc, served, mlflow)
        report = _too_few(uc, subject, version, len(current))
        png = None
        if report is None:
            reference = load_reference(lake.lake(), uc.name, version, classes)
            report, png, reference_uri = compare(reference, current)
            context.add_output_metadata({"reference_uri": reference_uri})
        context.add_output_metadata(_report_metadata(report, version, png, lake, uc))
        return _as_dict(report, version)

    def compare_features(reference: DriftReference, current: pd.DataFrame) -> tuple[DriftReport, bytes, str]:
        features = served_features(current, uc.contract.feature_names)
        report = feature_drift(
            reference.features,
            features,
            uc.contract.numeric_features,
            uc.contract.categorical_features,
            psi_threshold=monitoring.psi_threshold,
            alpha=monitoring.ks_alpha,
            drifted_share=monitoring.drifted_feature_share,
        )
        return report, drift_png(reference.features, features, report), reference.features_uri

    def compare_predictions(
        reference: DriftReference, current: pd.DataFrame
    ) -> tuple[DriftReport, bytes, str]:
        report = prediction_drift(
            reference.proba, current, classes, monitoring.prediction_psi_threshold, monitoring.ks_alpha
        )
        proba = reference.proba
        reference_frame = pd.DataFrame(
            {
                "probability": proba[:, 1] if len(classes) == 2 else proba.max(axis=1),
                "top_probability": proba.max(axis=1),
                "label": [classes[i] for i in proba.argmax(axis=1)],
            }
        )
        png = drift_png(reference_frame, current.assign(top_probability=current["probability"]), report)
        return report, png, reference.predictions_uri

    @asset(name="feature_drift", key_prefix=uc.name, ins=uc.ins("served_predictions"), group_name=GROUP)
    def feature_drift_report(
        context: AssetExecutionContext,
        served_predictions: pd.DataFrame,
        lake: LakeResource,
        mlflow: MlflowResource,
    ) -> dict:
        """PSI and KS (numeric) or chi-square (categorical) per feature, against the champion's training data."""
        return judged(context, "feature drift", served_predictions, lake, mlflow, compare_features)

    @asset(name="prediction_drift", key_prefix=uc.name, ins=uc.ins("served_predictions"), group_name=GROUP)
    def prediction_drift_report(
        context: AssetExecutionContext,
        served_predictions: pd.DataFrame,
        lake: LakeResource,
        mlflow: MlflowResource,
    ) -> dict:
        """Served predictions against the champion's own predictions on its holdout."""
        return judged(context, "prediction drift", served_predictions, lake, mlflow, compare_predictions)

    @asset(name="live_performance", key_prefix=uc.name, ins=uc.ins("served_predictions"), group_name=GROUP)
    def live_performance_report(
        context: AssetExecutionContext,
        served_predictions: pd.DataFrame,
        labels: LabelsZoneResource,
        mlflow: MlflowResource,
    ) -> dict:
        """The spec's metric on served predictions whose outcome landed in the labels zone; retraining is
        recommended when the champion's live score, on enough labelled rows, falls below the gate's floor."""
        folder = labels.location(uc.name)
        landed = read_labels(folder, uc.contract.target, classes)
        version, _ = _champion_window(uc, served_predictions, mlflow)
        result = live_performance(served_predictions, landed, uc.contract.target, classes, uc.spec.metric)
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
