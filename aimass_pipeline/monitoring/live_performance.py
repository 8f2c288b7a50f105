"""How the served model really does, once the true outcomes land: labels joined to predictions by id."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aimass_pipeline.core.errors import DataContractError
from aimass_pipeline.core.locations import Location, locate
from aimass_pipeline.core.rules import Vocabulary
from aimass_pipeline.core.scoring import as_matrix, score

PREDICTION_ID = "prediction_id"


@dataclass(frozen=True)
class LivePerformance:
    metric: str
    value: float | None
    rows_predicted: int
    rows_labelled: int
    rows_matched: int
    reason: str
    by_version: dict[str, dict[str, float | int | None]]

    def as_markdown(self) -> str:
        value = "n/a" if self.value is None else f"{self.value:.4f}"
        lines = [
            f"live {self.metric}: **{value}** on {self.rows_matched} labelled predictions "
            f"({self.rows_predicted} served in the window, {self.rows_labelled} labels landed); {self.reason}",
        ]
        if self.by_version:
            lines += ["", f"| model version | rows matched | {self.metric} |", "|---|---|---|"]
            for version, row in sorted(self.by_version.items()):
                shown = "n/a" if row["value"] is None else f"{row['value']:.4f}"
                lines.append(f"| {version} | {row['rows']} | {shown} |")
        return "\n".join(lines)


def read_labels(folder: Location | Path | str, target: str, classes: list[str]) -> pd.DataFrame:
    """Every ``*.csv`` / ``*.parquet`` in ``folder`` (a local folder or an fsspec location such as an
    ``s3://`` prefix) with ``prediction_id`` and ``target``; one label per id."""
    where = locate(folder)
    vocabulary = Vocabulary(tuple(classes))
    names = sorted(
        e["name"]
        for e in where.entries()
        if e["type"] == "file"
        and Path(e["name"]).suffix in (".csv", ".parquet")
        and not e["name"].startswith(".")
    )
    frames = []
    for name in names:
        path = Path(name)
        source = where.child(name)
        with source.open() as handle:
            frame = pd.read_csv(handle, dtype=str) if path.suffix == ".csv" else pd.read_parquet(handle)
        for column in (PREDICTION_ID, target):
            if column not in frame.columns:
                raise DataContractError(
                    f"a labels file needs the columns {PREDICTION_ID!r} and {target!r}",
                    source=str(source),
                    rule="labels_columns",
                    column=column,
                )
        frame = frame[[PREDICTION_ID, target]].astype({PREDICTION_ID: str})
        # The contract's category rule: a label in any spelling of a class counts as the declared class.
        given = frame[target].astype(str)
        frame[target] = given.map(vocabulary.canonical)
        unknown = frame[target].isna()
        if unknown.any():
            raise DataContractError(
                f"labels must be one of {classes}, got {sorted(given[unknown].unique())[:5]}",
                source=str(source),
                rule="label_in_classes",
                column=target,
                rows=[int(i) + 2 for i in np.flatnonzero(unknown)]
                if path.suffix == ".csv"
                else [int(i) for i in np.flatnonzero(unknown)],
            )
        frames.append(frame.assign(source_file=path.name))
    if not frames:
        return pd.DataFrame(
            {
                PREDICTION_ID: pd.Series(dtype=str),
                target: pd.Series(dtype=str),
                "source_file": pd.Series(dtype=str),
            }
        )
    labels = pd.concat(frames, ignore_index=True)
    conflicting = labels.groupby(PREDICTION_ID)[target].nunique()
    conflicting = conflicting[conflicting > 1]
    if len(conflicting):
        raise DataContractError(
            f"{len(conflicting)} prediction ids carry different labels, e.g. {list(conflicting.index[:3])}",
            source=str(folder),
            rule="one_label_per_prediction",
            column=PREDICTION_ID,
        )
    return labels.drop_duplicates(PREDICTION_ID)


def _score(metric: str, matched: pd.DataFrame, target: str, classes: list[str]) -> tuple[float | None, str]:
    if matched.empty:
        return None, "no served prediction has a label yet"
    truth = matched[target]
    if metric == "roc_auc":
        if truth.nunique() < 2:
            return None, f"ROC AUC needs both classes among the labels, only {truth.iloc[0]!r} landed"
        positive = matched["probability"].astype(float).to_numpy()
        return score(metric, (truth == classes[1]).to_numpy(dtype=np.int64), as_matrix(positive)), "scored"
    if metric == "accuracy":
        # The label the client got, whatever threshold its model version served with.
        return float(np.mean(truth.to_numpy() == matched["label"].astype(str).to_numpy())), "scored"
    raise ValueError(f"unknown metric {metric!r}; expected roc_auc or accuracy")


def live_performance(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    target: str,
    classes: list[str],
    metric: str,
    rows_served: int | None = None,
) -> LivePerformance:
    """ROC AUC of the served probability (binary) or accuracy of the served label (multiclass) on the
    predictions whose outcome has landed, overall and per model version; one row per ``prediction_id``.
    ``rows_served`` (default: the predictions given) is what the report calls served in the window."""
    for column in (PREDICTION_ID, "probability", "label", "model_version"):
        if column not in predictions.columns:
            raise DataContractError(
                "served predictions lack a column",
                source="prediction log",
                rule="unknown_column",
                column=column,
            )
    # A prediction logged twice (a retried flush) is one prediction.
    predictions = predictions.drop_duplicates(PREDICTION_ID)
    matched = predictions.merge(labels[[PREDICTION_ID, target]], on=PREDICTION_ID, how="inner")
    value, reason = _score(metric, matched, target, classes)
    by_version = {}
    for version, group in matched.groupby("model_version"):
        version_value, _ = _score(metric, group, target, classes)
        by_version[str(version)] = {"rows": len(group), "value": version_value}
    served = len(predictions) if rows_served is None else rows_served
    return LivePerformance(metric, value, served, len(labels), len(matched), reason, by_version)
