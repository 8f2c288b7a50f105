"""Pictures of drift: reference and current distributions of the most drifted features."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from aimass_pipeline.monitoring.drift import DriftReport, categorical_counts
from aimass_pipeline.monitoring.text_drift import term_counts


def drift_png(reference: pd.DataFrame, current: pd.DataFrame, report: DriftReport, top: int = 6) -> bytes:
    """Reference and current histograms of the most drifted features, on the reference's scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranked = report.ranked()[:top]
    cols = min(3, max(1, len(ranked)))
    rows = -(-max(1, len(ranked)) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.6 * rows), dpi=80, squeeze=False)
    for ax, row in zip(axes.flat, ranked, strict=False):
        ref, cur = reference[row.feature], current[row.feature]
        if row.kind == "numeric":
            ref, cur = ref.dropna().astype(float), cur.dropna().astype(float)
            low, high = ref.quantile(0.005), ref.quantile(0.995)
            span = (min(low, cur.min()) if len(cur) else low, max(high, cur.max()) if len(cur) else high)
            ax.hist(ref, bins=30, range=span, alpha=0.5, density=True, label="reference")
            ax.hist(cur, bins=30, range=span, alpha=0.5, density=True, label="current")
        else:
            counts = term_counts if row.kind == "text" else categorical_counts
            levels, ref_counts, cur_counts = counts(ref, cur)
            x = np.arange(len(levels))
            ax.bar(x - 0.2, ref_counts / max(ref_counts.sum(), 1), 0.4, label="reference")
            ax.bar(x + 0.2, cur_counts / max(cur_counts.sum(), 1), 0.4, label="current")
            ax.set_xticks(x, levels, rotation=45, fontsize=6)
        ax.set_title(f"{row.feature} (PSI {row.psi:.2f})", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(ranked) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
