"""The one scoring module: every metric over class-probability matrices, for tuning, evaluation, the gate,
compression and live performance alike.

Labels are class indices 0..K-1 and probabilities an (n, K) matrix, column k being P(class k). A binary
prediction is the positive class when P(positive) >= the threshold (0.5 unless a registered version says
otherwise), so "accuracy" means one thing wherever it is reported.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

DEFAULT_THRESHOLD = 0.5


def _metrics() -> ModuleType:
    # Imported on first use: the registry and the served bento import this module for its threshold rule,
    # and sklearn.metrics with scipy would add ~1 s to every CLI command and service start.
    import sklearn.metrics

    return sklearn.metrics


METRICS: dict[str, bool] = {  # name -> higher is better
    "roc_auc": True,
    "accuracy": True,
    "log_loss": False,
    "pr_auc": True,
}
# Metrics undefined on rows that lack a class (a bootstrap resample skips them).
NEEDS_EVERY_CLASS = ("roc_auc", "pr_auc")


def higher_is_better(metric: str) -> bool:
    try:
        return METRICS[metric]
    except KeyError:
        raise ValueError(f"unknown metric {metric!r}; known: {sorted(METRICS)}") from None


def as_matrix(proba: np.ndarray) -> np.ndarray:
    """(n, K) probabilities; a bare P(positive) vector becomes the binary matrix [1 - p, p]."""
    matrix = np.asarray(proba, dtype=np.float64)
    return np.column_stack([1 - matrix, matrix]) if matrix.ndim == 1 else matrix


def checked(y_true: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels as int64, probabilities as float64), or a ValueError naming what is wrong with them."""
    labels = np.asarray(y_true)
    probabilities = np.asarray(proba, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] < 2:
        raise ValueError(
            f"proba must be an (n, K>=2) matrix of class probabilities, got shape {probabilities.shape}"
        )
    if labels.ndim != 1 or len(labels) != len(probabilities):
        raise ValueError(f"y_true has shape {labels.shape} but proba has {len(probabilities)} rows")
    if len(labels) == 0:
        raise ValueError("cannot score zero rows")
    if not np.issubdtype(labels.dtype, np.integer):
        if not (np.issubdtype(labels.dtype, np.floating) and np.all(np.mod(labels, 1) == 0)):
            raise ValueError(f"y_true must hold integer class indices, got dtype {labels.dtype}")
        labels = labels.astype(np.int64)
    n_classes = probabilities.shape[1]
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"y_true holds labels outside 0..{n_classes - 1} (proba has {n_classes} columns)")
    # Float32 runtimes (onnxruntime) sum to 1 within a few ulps: a probability of 1.0000001 is not an error.
    if not np.isfinite(probabilities).all() or probabilities.min() < -1e-6 or probabilities.max() > 1 + 1e-6:
        raise ValueError("proba must hold finite probabilities within [0, 1]")
    return labels, probabilities


def predicted_classes(proba: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Binary: 1 when P(positive) >= threshold; multiclass: the most probable class."""
    matrix = as_matrix(proba)
    if matrix.shape[1] == 2:
        return (matrix[:, 1] >= threshold).astype(np.int64)
    return matrix.argmax(axis=1)


def correct(y_true: np.ndarray, proba: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Which rows the model gets right."""
    return predicted_classes(proba, threshold) == np.asarray(y_true)


def auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney AUC from midranks (ties count half): sklearn's roc_auc_score in O(n log n)."""
    positive = np.asarray(positive, dtype=bool)
    m, n = int(positive.sum()), int((~positive).sum())
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    return float((ranks[positive].sum() - m * (m + 1) / 2) / (m * n))


def score(metric: str, y_true: np.ndarray, proba: np.ndarray) -> float:
    """``metric`` of (n, K) class probabilities against class indices; multiclass ROC AUC is the one-vs-rest
    macro average, and needs every class present (a silently smaller average would not compare)."""
    higher_is_better(metric)  # unknown names fail before any shape complaint
    labels, probabilities = checked(y_true, proba)
    n_classes = probabilities.shape[1]
    if metric == "accuracy":
        return float(np.mean(correct(labels, probabilities)))
    if metric == "log_loss":
        return float(_metrics().log_loss(labels, probabilities, labels=list(range(n_classes))))
    present = np.unique(labels)
    if len(present) < 2:
        raise ValueError(f"{metric} needs at least two classes present in y_true")
    if metric == "pr_auc":
        if n_classes != 2:
            raise ValueError(
                f"pr_auc is defined here for binary problems only; proba has {n_classes} classes"
            )
        return float(_metrics().average_precision_score(labels, probabilities[:, 1]))
    if n_classes == 2:
        return auc(labels == 1, probabilities[:, 1])
    if len(present) < n_classes:
        missing = sorted(set(range(n_classes)) - set(present.tolist()))
        raise ValueError(f"multiclass roc_auc needs every class in y_true; missing {missing}")
    return float(np.mean([auc(labels == k, probabilities[:, k]) for k in range(n_classes)]))


def bootstrap_interval(
    metric: str, y_true: np.ndarray, proba: np.ndarray, n_boot: int = 500, level: float = 0.95, seed: int = 42
) -> tuple[float, float]:
    """The percentile interval of ``metric`` over rows resampled with replacement (seeded); a resample that
    lost a class is skipped where the metric needs every class."""
    labels, probabilities = checked(y_true, proba)
    rng = np.random.default_rng(seed)
    n, classes = len(labels), probabilities.shape[1]
    scores = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        if metric in NEEDS_EVERY_CLASS and np.unique(labels[idx]).size < classes:
            continue
        scores.append(score(metric, labels[idx], probabilities[idx]))
    tail = (1 - level) / 2
    return float(np.quantile(scores, tail)), float(np.quantile(scores, 1 - tail))


def holdout_metrics(y_true: np.ndarray, proba: np.ndarray, seed: int = 42) -> dict[str, float]:
    """Every figure the evaluation reports for one model on the holdout, binary or multiclass, with a
    bootstrap interval on the primary metric (ROC AUC for binary, accuracy for multiclass)."""
    labels, probabilities = checked(y_true, as_matrix(proba))
    predicted = predicted_classes(probabilities)
    if probabilities.shape[1] == 2:
        if len(np.unique(labels)) != 2:
            raise ValueError("holdout must contain both classes to score ROC AUC")
        low, high = bootstrap_interval("roc_auc", labels, probabilities, seed=seed)
        positive = probabilities[:, 1]
        return {
            "roc_auc": score("roc_auc", labels, probabilities),
            "roc_auc_ci_low": low,
            "roc_auc_ci_high": high,
            "pr_auc": score("pr_auc", labels, probabilities),
            "brier": float(_metrics().brier_score_loss(labels, positive)),
            "log_loss": score("log_loss", labels, probabilities),
            "accuracy": score("accuracy", labels, probabilities),
            "precision": float(_metrics().precision_score(labels, predicted, zero_division=0)),
            "recall": float(_metrics().recall_score(labels, predicted, zero_division=0)),
            "f1": float(_metrics().f1_score(labels, predicted, zero_division=0)),
            "positive_rate": float(labels.mean()),
            "rows": float(len(labels)),
        }
    low, high = bootstrap_interval("accuracy", labels, probabilities, seed=seed)
    return {
        "accuracy": score("accuracy", labels, probabilities),
        "accuracy_ci_low": low,
        "accuracy_ci_high": high,
        "roc_auc": score("roc_auc", labels, probabilities),
        "log_loss": float(
            _metrics().log_loss(
                labels, np.clip(probabilities, 1e-15, 1), labels=list(range(probabilities.shape[1]))
            )
        ),
        "f1_macro": float(_metrics().f1_score(labels, predicted, average="macro")),
        "rows": float(len(labels)),
    }
