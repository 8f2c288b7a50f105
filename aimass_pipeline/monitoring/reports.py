"""The monitoring reports' verdicts: which reports there are, when there is too little traffic to judge, and a
report as the value its asset returns (and the drift sensor reads)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.core.specs import MonitoringSpec
from aimass_pipeline.monitoring.drift import DriftReport, feature_drift, prediction_drift, served_features
from aimass_pipeline.monitoring.plots import drift_png
from aimass_pipeline.monitoring.reference import DriftReference

# Each carries ``retrain_recommended``, which the drift sensor reads.
REPORTS = ("feature_drift", "prediction_drift", "live_performance")

# (reference, the champion's window, contract, thresholds) -> (report, plot PNG, the reference's URI)
Compare = Callable[[DriftReference, pd.DataFrame, Contract, MonitoringSpec], tuple[DriftReport, bytes, str]]


def too_few(
    use_case: str, monitoring: MonitoringSpec, subject: str, version: str | None, rows: int
) -> DriftReport | None:
    """No verdict, and why, when there is no champion or too little of its traffic to judge."""
    if version is None:
        return DriftReport(subject, 0, rows, reason=f"{use_case} has no champion yet")
    if rows < monitoring.min_rows:
        return DriftReport(
            subject,
            0,
            rows,
            reason=f"only {rows} predictions by version {version} in the last {monitoring.window_hours} h "
            f"(< min_rows {monitoring.min_rows}); too few to judge",
        )
    return None


def as_dict(report: DriftReport, version: str | None) -> dict:
    return {
        "champion_version": version,
        "retrain_recommended": report.retrain_recommended,
        "reason": report.reason,
        "drifted_features": report.drifted_features,
        "drifted_share": report.drifted_share,
        "rows": [row.__dict__ for row in report.rows],
    }


def compare_features(
    reference: DriftReference, current: pd.DataFrame, contract: Contract, monitoring: MonitoringSpec
) -> tuple[DriftReport, bytes, str]:
    """Each served feature against the champion's training data."""
    features = served_features(current, contract.feature_names, contract.pii_columns)
    report = feature_drift(
        reference.features,
        features,
        contract.numeric_features,
        contract.categorical_features,
        psi_threshold=monitoring.psi_threshold,
        alpha=monitoring.ks_alpha,
        drifted_share=monitoring.drifted_feature_share,
        text=contract.text_features,
    )
    return report, drift_png(reference.features, features, report), reference.features_uri


def compare_predictions(
    reference: DriftReference, current: pd.DataFrame, contract: Contract, monitoring: MonitoringSpec
) -> tuple[DriftReport, bytes, str]:
    """The served probabilities against the champion's own on its holdout."""
    classes = list(contract.classes)
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
