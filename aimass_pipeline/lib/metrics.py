"""One scoring entry point over class-probability matrices, shared by tuning, evaluation and the gate."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, average_precision_score, log_loss, roc_auc_score

METRICS: dict[str, bool] = {  # name -> higher is better
    "roc_auc": True,
    "accuracy": True,
    "log_loss": False,
    "pr_auc": True,
}


def higher_is_better(metric: str) -> bool:
    try:
        return METRICS[metric]
    except KeyError:
        raise ValueError(f"unknown metric {metric!r}; known: {sorted(METRICS)}") from None


def _checked(y_true: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    if not np.isfinite(probabilities).all() or probabilities.min() < 0 or probabilities.max() > 1:
        raise ValueError("proba must hold finite probabilities in [0, 1]")
    return labels, probabilities


def score(metric: str, y_true: np.ndarray, proba: np.ndarray) -> float:
    """y_true holds class indices 0..K-1; proba is (n, K), column k being P(class k)."""
    higher_is_better(metric)  # unknown names fail before any shape complaint
    labels, probabilities = _checked(y_true, proba)
    n_classes = probabilities.shape[1]
    classes = list(range(n_classes))
    if metric == "accuracy":
        return float(accuracy_score(labels, probabilities.argmax(axis=1)))
    if metric == "log_loss":
        return float(log_loss(labels, probabilities, labels=classes))
    if len(np.unique(labels)) < 2:
        raise ValueError(f"{metric} needs at least two classes present in y_true")
    if metric == "pr_auc":
        if n_classes != 2:
            raise ValueError(
                f"pr_auc is defined here for binary problems only; proba has {n_classes} classes"
            )
        return float(average_precision_score(labels, probabilities[:, 1]))
    if n_classes == 2:
        return float(roc_auc_score(labels, probabilities[:, 1]))
    if len(np.unique(labels)) < n_classes:
        # One-vs-rest needs a positive of every class; a silently smaller average would not compare.
        missing = sorted(set(classes) - set(labels.tolist()))
        raise ValueError(f"multiclass roc_auc needs every class in y_true; missing {missing}")
    return float(roc_auc_score(labels, probabilities, multi_class="ovr", average="macro", labels=classes))
