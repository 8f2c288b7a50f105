"""The evaluation's plots: ROC curves of every candidate on the holdout."""

from __future__ import annotations

import io

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


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
