"""What a shadow showed: how often it agrees with the answers clients got, how its scores differ, and how both
do on the outcomes that landed. Served and shadow rows pair up by ``prediction_id``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from aimass_pipeline.rollout.canary import per_row_loss
from aimass_pipeline.rollout.logs import psi


def shadow_report(
    served: pd.DataFrame,
    shadow: pd.DataFrame,
    labels: pd.DataFrame,
    target: str,
    classes: list[str],
    shadow_version: str,
) -> dict[str, Any]:
    """Agreement, score difference and live performance of the shadow ``shadow_version`` against what was
    served for the same requests."""
    shadow = shadow[shadow["model_version"].astype(str) == str(shadow_version)]
    pairs = served.merge(shadow, on="prediction_id", suffixes=("_served", "_shadow"))
    report: dict[str, Any] = {
        "shadow_version": str(shadow_version),
        "served_rows": len(served),
        "shadow_rows": len(shadow),
        "pairs": len(pairs),
        "agreement": None,
        "mean_abs_probability_difference": None,
        "probability_psi": None,
        "labelled_pairs": 0,
        "live": {},
    }
    if pairs.empty:
        return report
    p_served = pairs["probability_served"].astype(float).to_numpy()
    p_shadow = pairs["probability_shadow"].astype(float).to_numpy()
    report["agreement"] = float(
        np.mean(pairs["label_served"].astype(str) == pairs["label_shadow"].astype(str))
    )
    report["mean_abs_probability_difference"] = float(np.mean(np.abs(p_served - p_shadow)))
    report["probability_psi"] = psi(p_served, p_shadow) if len(pairs) >= 20 else None
    truth = labels.drop_duplicates("prediction_id").set_index("prediction_id")[target]
    labelled = pairs[pairs["prediction_id"].isin(truth.index)]
    report["labelled_pairs"] = len(labelled)
    if len(labelled):
        outcome = truth.loc[labelled["prediction_id"]]
        for arm in ("served", "shadow"):
            rows = labelled.rename(
                columns={f"{c}_{arm}": c for c in ("probability", "label", "probabilities")}
            )
            report["live"][arm] = {
                metric: float(per_row_loss(rows, outcome, classes, metric).mean())
                for metric in ("brier", "error")
            }
    return report


def as_markdown(report: dict[str, Any]) -> str:
    def shown(value: Any) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    lines = [
        f"shadow version {report['shadow_version']}: {report['pairs']} pairs "
        f"({report['served_rows']} served, {report['shadow_rows']} shadow rows)",
        "",
        f"- label agreement: **{shown(report['agreement'])}**",
        f"- mean |probability difference|: {shown(report['mean_abs_probability_difference'])}",
        f"- probability PSI (shadow vs served): {shown(report['probability_psi'])}",
        f"- labelled pairs: {report['labelled_pairs']}",
    ]
    if report["live"]:
        lines += ["", "| arm | brier | error |", "|---|---|---|"]
        for arm, row in report["live"].items():
            lines.append(f"| {arm} | {row['brier']:.4f} | {row['error']:.4f} |")
    return "\n".join(lines)
