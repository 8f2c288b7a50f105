"""A credit_risk champion with its drift reference, and served traffic written by the real PredictionLogger."""

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.prediction_log import PredictionLogger
from aimass_pipeline.monitoring.reference import save_reference
from aimass_pipeline.orchestration.use_case import UseCase
from aimass_pipeline.settings import Settings
from aimass_pipeline_tests.conftest import CREDIT_RISK, CREDIT_SPEC

UC = UseCase(CREDIT_SPEC)
CLASSES = list(CREDIT_RISK.classes)
FEATURES = CREDIT_RISK.feature_names
# More served rows than the spec's min_rows, far fewer than the reference.
SERVED = 400
REFERENCE_ROWS = 2500


def score(frame: pd.DataFrame) -> np.ndarray:
    """A fixed stand-in model: the same function scores the reference and the served traffic."""
    z = -0.04 * (frame["Age"] - 40) + 0.0008 * (frame["Amount"] - 1000) - 0.5
    p = 1 / (1 + np.exp(-z.to_numpy(dtype=float)))
    return np.column_stack([1 - p, p])


def shift(frame: pd.DataFrame) -> pd.DataFrame:
    """Older applicants borrowing more for dearer goods over longer terms."""
    return frame.assign(
        Age=(frame["Age"] + 25).clip(upper=100),
        Amount=frame["Amount"] * 3,
        Price=frame["Price"] * 2,
        Income=frame["Income"] * 2,
        Expenses=frame["Expenses"] + 80,
        Time=(frame["Time"] + 30).clip(upper=120),
    )


def serve(settings: Settings, rows: pd.DataFrame, version: str, at: datetime | None = None) -> list[str]:
    """Log ``rows`` as served by ``version`` now, or at ``at`` (UTC)."""
    clock = (lambda: at) if at is not None else (lambda: datetime.now(UTC))
    logger = PredictionLogger(settings.lake_url, UC.name, start=False, clock=clock)
    records = rows[FEATURES].astype(object).where(rows[FEATURES].notna(), None).to_dict("records")
    proba = score(rows)
    ids = [f"v{version}-row{i}" for i in rows.index]
    outputs = [
        {"prediction_id": pid, "probability": float(p), "label": CLASSES[int(p >= 0.5)]}
        for pid, p in zip(ids, proba[:, 1], strict=True)
    ]
    logger.log(records, outputs, model_name=UC.name, model_version=version, request_id="r1")
    logger.close()
    return ids


def champion_home(
    aimass_home: Settings, credit_frame: pd.DataFrame, tmp_path: Path
) -> tuple[Settings, pd.DataFrame]:
    """Champion version 1 of credit_risk with its reference; returns the rows it has not seen."""
    client = MlflowClient(tracking_uri=aimass_home.mlflow_tracking_uri)
    client.create_registered_model(UC.name)
    version = client.create_model_version(UC.name, str(tmp_path / "model"))
    client.set_registered_model_alias(UC.name, "champion", version.version)
    shuffled = credit_frame.sample(frac=1.0, random_state=7).reset_index(drop=True)
    reference = shuffled.iloc[:REFERENCE_ROWS]
    save_reference(
        Lake(aimass_home.lake_url), UC.name, "1", reference[FEATURES], score(reference), CLASSES, seed=1
    )
    return aimass_home, shuffled.iloc[REFERENCE_ROWS:]
