"""What drift is measured against: a snapshot, per registered model version, of the data that version was
trained on and of its own predictions on the holdout, kept in the lake next to the prediction log.

Keyed by version, not "latest", and written for every registered version: a rejected challenger retrains on newer
data without becoming champion, a rollback brings back an older version, and an operator may promote a version
the gate refused; either way the champion's own reference is the one to compare with."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aimass_pipeline.core.lake import Lake

# A sample this size pins PSI bins and KS to well under 0.01; bigger only costs lake space and read time.
MAX_REFERENCE_ROWS = 20_000


class MissingReferenceError(LookupError):
    """The champion has no drift reference (it was registered before every version got one, or elsewhere)."""


@dataclass(frozen=True)
class DriftReference:
    version: str
    features: pd.DataFrame
    proba: np.ndarray
    features_uri: str
    predictions_uri: str


def _parts(use_case: str, version: str, name: str) -> tuple[str, ...]:
    return ("monitoring", use_case, "reference", f"v{version}", f"{name}.parquet")


def save_reference(
    lake: Lake,
    use_case: str,
    version: str,
    features: pd.DataFrame,
    proba: np.ndarray,
    classes: list[str],
    seed: int,
) -> DriftReference:
    """Store a seeded sample of the training features and the version's holdout probabilities."""
    sample = (
        features.sample(n=MAX_REFERENCE_ROWS, random_state=seed)
        if len(features) > MAX_REFERENCE_ROWS
        else features
    )
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[1] != len(classes):
        raise ValueError(f"holdout probabilities have shape {proba.shape}, expected (n, {len(classes)})")
    lake.write_parquet(sample.reset_index(drop=True), *_parts(use_case, version, "features"))
    lake.write_parquet(pd.DataFrame(proba, columns=list(classes)), *_parts(use_case, version, "predictions"))
    return DriftReference(
        version,
        sample,
        proba,
        lake.uri(*_parts(use_case, version, "features")),
        lake.uri(*_parts(use_case, version, "predictions")),
    )


def load_reference(lake: Lake, use_case: str, version: str, classes: list[str]) -> DriftReference:
    features_parts, predictions_parts = (
        _parts(use_case, version, "features"),
        _parts(use_case, version, "predictions"),
    )
    if not lake.exists(*features_parts) or not lake.exists(*predictions_parts):
        raise MissingReferenceError(
            f"{use_case} version {version} has no drift reference at {lake.uri(*features_parts[:-1])}: the "
            f"lifecycle writes one for every version it registers (asset champion_reference), so this version "
            f"was registered elsewhere or before references were written for every version; promote a version "
            f"the lifecycle registered (`aimass promote {use_case} <version>`) or run the lifecycle to register one"
        )
    predictions = lake.read_parquet(*predictions_parts)
    missing = [c for c in classes if c not in predictions.columns]
    if missing:
        raise MissingReferenceError(f"{lake.uri(*predictions_parts)} lacks the class columns {missing}")
    return DriftReference(
        version,
        lake.read_parquet(*features_parts),
        predictions[list(classes)].to_numpy(dtype=float),
        lake.uri(*features_parts),
        lake.uri(*predictions_parts),
    )
