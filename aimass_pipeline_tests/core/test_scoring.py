import math

import numpy as np
import pytest

from aimass_pipeline.core.scoring import higher_is_better, holdout_metrics, score


def binary(positive: list[float]) -> np.ndarray:
    p = np.array(positive)
    return np.column_stack([1 - p, p])


Y = np.array([0, 0, 1, 1])
P = binary([0.1, 0.4, 0.35, 0.8])  # one discordant pair out of four


def test_binary_metrics_by_hand() -> None:
    assert score("roc_auc", Y, P) == pytest.approx(0.75)
    assert score("roc_auc", Y, binary([0.9, 0.8, 0.2, 0.1])) == pytest.approx(0.0)
    assert score("accuracy", Y, P) == pytest.approx(0.75)  # 0.35 is called class 0
    # Ranked: 0.8 (pos), 0.4 (neg), 0.35 (pos), 0.1 (neg) -> precision 1 at recall 1/2, 2/3 at recall 1.
    assert score("pr_auc", Y, P) == pytest.approx((1 + 2 / 3) / 2)
    expected = -np.mean(np.log([0.9, 0.6, 0.35, 0.8]))
    assert score("log_loss", Y, P) == pytest.approx(expected)


def test_multiclass_roc_auc_is_macro_one_vs_rest() -> None:
    y = np.array([0, 1, 2, 0, 1, 2])
    proba = np.array(
        [
            [0.7, 0.2, 0.1],
            [0.2, 0.5, 0.3],
            [0.1, 0.6, 0.3],  # a class-2 row that ranks high for class 1
            [0.5, 0.3, 0.2],
            [0.3, 0.4, 0.3],
            [0.2, 0.2, 0.6],
        ]
    )
    # Class 0: perfect (1.0). Class 1 positives {0.5, 0.4} vs negatives {0.2, 0.6, 0.3, 0.2}: 6 of 8
    # pairs won -> 0.75. Class 2 positives {0.3, 0.6} vs negatives {0.1, 0.3, 0.2, 0.3}: 0.3 beats two,
    # ties two (half each) -> 3, 0.6 beats four -> 7 of 8 = 0.875.
    assert score("roc_auc", y, proba) == pytest.approx((1.0 + 0.75 + 0.875) / 3)
    assert score("accuracy", y, proba) == pytest.approx(5 / 6)
    assert score("log_loss", y, proba) == pytest.approx(-np.mean(np.log([0.7, 0.5, 0.3, 0.5, 0.4, 0.6])))


def test_direction() -> None:
    assert higher_is_better("roc_auc") and higher_is_better("accuracy") and higher_is_better("pr_auc")
    assert not higher_is_better("log_loss")
    with pytest.raises(ValueError, match=r"unknown metric 'f1'; known: \['accuracy', 'log_loss'"):
        higher_is_better("f1")


@pytest.mark.parametrize(
    ("metric", "y", "proba", "message"),
    [
        ("f1", Y, P, "unknown metric 'f1'"),
        ("roc_auc", Y[:3], P, r"y_true has shape \(3,\) but proba has 4 rows"),
        ("roc_auc", Y, P[:, 1], r"\(n, K>=2\) matrix"),
        ("accuracy", np.array([0, 1, 2, 1]), P, r"outside 0..1 \(proba has 2 columns\)"),
        ("accuracy", np.array([0.0, 0.5, 1.0, 1.0]), P, "integer class indices"),
        ("log_loss", Y, binary([0.1, math.nan, 0.3, 0.4]), "finite probabilities"),
        ("accuracy", Y, P * 2, r"in \[0, 1\]"),
        ("roc_auc", np.array([1, 1, 1, 1]), P, "at least two classes"),
        ("pr_auc", np.array([0, 1, 2]), np.full((3, 3), 1 / 3), "binary problems only"),
        (
            "roc_auc",
            np.array([0, 1, 1]),
            np.full((3, 3), 1 / 3),
            r"needs every class in y_true; missing \[2\]",
        ),
        ("accuracy", np.array([], dtype=int), np.empty((0, 2)), "zero rows"),
    ],
)
def test_errors(metric: str, y: np.ndarray, proba: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        score(metric, y, proba)


def test_float_labels_holding_whole_numbers_are_accepted() -> None:
    assert score("roc_auc", Y.astype(float), P) == pytest.approx(0.75)


def test_scores_and_their_errors() -> None:
    y = np.array([0, 0, 1, 1, 0, 1] * 20)
    perfect = holdout_metrics(y, y * 0.9 + 0.05)
    assert perfect["roc_auc"] == 1.0 and perfect["accuracy"] == 1.0
    assert perfect["roc_auc_ci_low"] <= perfect["roc_auc"] <= perfect["roc_auc_ci_high"]
    with pytest.raises(ValueError, match="both classes"):
        holdout_metrics(np.zeros(10), np.full(10, 0.3))
    with pytest.raises(ValueError, match="within"):
        holdout_metrics(y, np.full(len(y), 1.2))
