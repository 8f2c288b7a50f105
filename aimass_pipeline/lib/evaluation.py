"""Holdout metrics for a binary classifier, with a bootstrap interval on ROC AUC and a ROC plot."""

from __future__ import annotations

import io
import time
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
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


def score_multiclass(y_true: np.ndarray, proba: np.ndarray, seed: int = 42) -> dict[str, float]:
    """Accuracy (with a bootstrap interval), macro one-vs-rest ROC AUC, log loss and macro F1."""
    y_true = np.asarray(y_true).astype(int)
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[0] != len(y_true):
        raise ValueError(f"probabilities {proba.shape} do not match {len(y_true)} labels")
    labels = proba.argmax(axis=1)
    correct = (labels == y_true).astype(float)
    rng = np.random.default_rng(seed)
    boots = [correct[rng.integers(0, len(correct), len(correct))].mean() for _ in range(500)]
    classes = np.arange(proba.shape[1])
    return {
        "accuracy": float(correct.mean()),
        "accuracy_ci_low": float(np.quantile(boots, 0.025)),
        "accuracy_ci_high": float(np.quantile(boots, 0.975)),
        "roc_auc": float(roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=classes)),
        "log_loss": float(log_loss(y_true, np.clip(proba, 1e-15, 1), labels=classes)),
        "f1_macro": float(f1_score(y_true, labels, average="macro")),
        "rows": float(len(y_true)),
    }


def score_all(n_classes: int, y_true: np.ndarray, proba: np.ndarray, seed: int = 42) -> dict[str, float]:
    """Holdout metrics for (n, K) class probabilities, binary or multiclass."""
    if n_classes == 2:
        return score_binary(y_true, np.asarray(proba)[:, 1], seed=seed)
    return score_multiclass(y_true, proba, seed=seed)


SINGLE_ROWS = 20  # rows timed one at a time, as an online request would arrive
BATCH_REPEATS = 15


def latency_ms(models: list[object], X: pd.DataFrame, seed: int = 42) -> list[tuple[float, float]]:
    """(single-row, batch) milliseconds per row for each model, medians after a warm-up; models are timed
    interleaved so drift of a shared machine hits them alike."""
    rows = np.random.default_rng(seed).choice(len(X), size=min(SINGLE_ROWS, len(X)), replace=False)
    singles = [X.iloc[[i]] for i in rows]
    for model in models:  # warm-up: lazy sessions, allocator, first-call dispatch
        model.predict_proba(singles[0])
        model.predict_proba(X)
    single: list[list[float]] = [[] for _ in models]
    batch: list[list[float]] = [[] for _ in models]
    for row in singles:
        for times, model in zip(single, models, strict=True):
            start = time.perf_counter()
            model.predict_proba(row)
            times.append((time.perf_counter() - start) * 1000)
    for _ in range(BATCH_REPEATS):
        for times, model in zip(batch, models, strict=True):
            start = time.perf_counter()
            model.predict_proba(X)
            times.append((time.perf_counter() - start) * 1000 / len(X))
    return [(float(np.median(s)), float(np.median(b))) for s, b in zip(single, batch, strict=True)]


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
