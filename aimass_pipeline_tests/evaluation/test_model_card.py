"""The model card renders every section from real gate/compression records and keeps its tables intact."""

from __future__ import annotations

import re

import numpy as np

from aimass_pipeline.evaluation.gate import decide
from aimass_pipeline.evaluation.model_card import render_model_card

SECTIONS = [
    "## Parameters",
    "## Data",
    "## Metrics",
    "## Gate decision",
    "## Compression",
    "## Lineage",
    "## Intended use",
]


def _gate() -> dict:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = 1 / (1 + np.exp(-(2.0 * y - 1 + rng.normal(0, 1, y.size))))
    q = 1 / (1 + np.exp(-(0.5 * (2.0 * y - 1) + rng.normal(0, 1, y.size))))
    decision = decide(
        metric="roc_auc",
        y_true=y,
        challenger_proba=np.column_stack([1 - p, p]),
        champion_proba=np.column_stack([1 - q, q]),
        floor=0.6,
        challenger_latency_ms=1.5,
        max_latency_ms=10.0,
        n_boot=200,
    )
    return decision.as_dict()


COMPRESSION = {
    "method": "onnx",
    "kept": True,
    "reason": "kept onnx: roc_auc 0.9 -> 0.9",
    "metric": "roc_auc",
    "rows": 300,
    "size_before": 68871,
    "size_after": 24387,
    "latency_ms_per_row_single_before": 3.0,
    "latency_ms_per_row_single_after": 2.7,
    "latency_ms_per_row_batch_before": 0.0125,
    "latency_ms_per_row_batch_after": 0.0121,
    "metric_before": 0.9994,
    "metric_after": 0.9990,
    "max_abs_proba_diff": 8.1e-08,
}


def _card(**overrides) -> str:
    kwargs = dict(
        use_case="credit_risk",
        description="Scores loan applications for default risk.\nUsed by analysts | reviewers.",
        version=7,
        family="xgboost",
        params={"max_depth": 4, "note": "a|b"},
        data={
            "rows": 3500,
            "holdout_rows": 890,
            "class_balance": {"0": 0.72, "1": 0.28},
            "batches": [
                {"file": "credit|2024-01.csv", "sha256": "ab12", "rows": 2000},
                {"file": "credit_2024-02.csv", "sha256": "cd34", "rows": 1500},
            ],
        },
        metrics={"roc_auc": 0.8612, "brier": 0.1321},
        intervals={"roc_auc": (0.84, 0.88)},
        gate=_gate(),
        compression=COMPRESSION,
        lineage={
            "dagster_run_id": "run-123",
            "mlflow_run_id": "mlf-456",
            "code_version": "git:abc|def",
            "data_batches": ["b1", "b2"],
        },
    )
    return render_model_card(**{**kwargs, **overrides})


def test_every_section_renders_with_its_figures() -> None:
    card = _card()
    positions = [card.index(section) for section in SECTIONS]
    assert positions == sorted(positions) and card.startswith("# Model card: credit_risk v7")
    gate = _gate()
    for expected in [
        "| holdout rows | 890 |",
        "| 1 | 0.2800 |",
        "ab12",
        "| roc_auc | 0.8612 | [0.8400, 0.8800] |",
        "| brier | 0.1321 | n/a |",
        "| test | delong |",
        f"[{gate['ci_low']:+.4f}, {gate['ci_high']:+.4f}]",
        f"{gate['p_value']:.3g}",
        "1.5000 (budget 10.0000)",
        "| size (bytes) | 68871 | 24387 | 0.354x |",
        "| roc_auc | 0.9994 | 0.9990 | -0.0004 |",
        "| MLflow run | mlf-456 |",
        "b1, b2",
        "Scores loan applications for default risk.\nUsed by analysts \\| reviewers.",  # prose keeps its lines
    ]:
        assert expected in card, expected


def test_pipes_in_values_are_escaped_and_tables_stay_rectangular() -> None:
    card = _card()
    assert (
        "analysts \\| reviewers" in card
        and "a\\|b" in card
        and "credit\\|2024-01.csv" in card
        and "git:abc\\|def" in card
    )
    assert "a|b" not in card.replace("a\\|b", "")
    for block in re.split(r"\n\s*\n", card):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        widths = {len(re.findall(r"(?<!\\)\|", row)) for row in rows}
        assert len(widths) <= 1, block


def test_missing_compression_and_unsupported_compression_are_stated() -> None:
    assert "No compression was attempted" in _card(compression=None)
    card = _card(compression={"method": "none", "kept": False, "reason": "no ONNX path for SVC"})
    assert "Not compressed: no ONNX path for SVC" in card
