"""Holdout metrics for a binary classifier, with a bootstrap interval on ROC AUC and a ROC plot."""

from __future__ import annotations

import io

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)


def score_binary(
    y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5, seed: int = 42
) -> dict[str, float]:
    y_true = np.asarray(y_true).astype(int)
    proba = np.asarray(proba, dtype=float)
    if y_true.shape != proba.shape:
        raise ValueError(f"labels {y_true.shape} and probabilities {proba.shape} differ in shape")
    if len(np.unique(y_true)) != 2:
        raise ValueError("holdout must contain both classes to score ROC AUC")
    if np.isnan(proba).any() or (proba < 0).any() or (proba > 1).any():
        raise ValueError("probabilities must be finite and within [0, 1]")
    labels = (proba >= threshold).astype(int)
    low, high = bootstrap_roc_auc(y_true, proba, seed=seed)
    return {
        "roc_auc": float(roc_auc_score(y_true, proba)),
        "roc_auc_ci_low": low,
        "roc_auc_ci_high": high,
        "pr_auc": float(average_precision_score(y_true, proba)),
        "brier": float(brier_score_loss(y_true, proba)),
        "log_loss": float(log_loss(y_true, proba)),
        "accuracy": float(accuracy_score(y_true, labels)),
        "precision": float(precision_score(y_true, labels, zero_division=0)),
        "recall": float(recall_score(y_true, labels, zero_division=0)),
        "f1": float(f1_score(y_true, labels, zero_division=0)),
        "positive_rate": float(y_true.mean()),
        "rows": float(len(y_true)),
    }


def bootstrap_roc_auc(
    y_true: np.ndarray, proba: np.ndarray, n_boot: int = 500, level: float = 0.95, seed: int = 42
) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    n = len(y_true)
    scores = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        if y_true[idx].min() == y_true[idx].max():
            continue
        scores.append(roc_auc_score(y_true[idx], proba[idx]))
    tail = (1 - level) / 2
    return float(np.quantile(scores, tail)), float(np.quantile(scores, 1 - tail))


def roc_plot_png(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> bytes:
    """One ROC curve per named model, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=90)
    for name, (y_true, proba) in curves.items():
        fpr, tpr, _ = roc_curve(y_true, proba)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y_true, proba):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
