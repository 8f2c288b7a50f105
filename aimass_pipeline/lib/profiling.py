"""A data profile of a model table: counts, missingness, class balance, distributions, plus a PNG."""

from __future__ import annotations

import io

import pandas as pd

from aimass_pipeline.lib.contracts import Contract

MAX_PLOTTED = 16


def profile_table(frame: pd.DataFrame, contract: Contract, label_col: str) -> dict:
    if frame.empty:
        raise ValueError("cannot profile an empty table")
    missing = {c: int(frame[c].isna().sum()) for c in contract.feature_names}
    numeric = frame[contract.numeric_features].astype("float64")
    labels = frame[label_col].astype(int)
    counts = labels.value_counts().sort_index()
    balance = {contract.classes[int(k)]: round(float(v) / len(frame), 4) for k, v in counts.items()}
    # Correlation with the label is meaningful for a binary target; for many classes it is only indicative.
    correlations = numeric.corrwith(labels.astype(float)).round(4).fillna(0.0).to_dict()
    return {
        "rows": len(frame),
        "columns": len(contract.feature_names),
        "missing_values": int(sum(missing.values())),
        "missing_by_column": missing,
        "class_balance": balance,
        "numeric_summary": numeric.describe().T.round(3),
        "categorical_levels": {
            c: {str(k): int(v) for k, v in frame[c].value_counts(dropna=False).items()}
            for c in contract.categorical_features
        },
        "label_correlation": correlations,
    }


def profile_markdown(profile: dict) -> str:
    balance = ", ".join(f"{k} {v:.1%}" for k, v in profile["class_balance"].items())
    lines = [
        f"**{profile['rows']} rows**, {profile['columns']} features, {profile['missing_values']} missing values; "
        f"classes: {balance}",
        "",
        "| feature | missing | corr. with label |",
        "|---|---|---|",
    ]
    for name, count in profile["missing_by_column"].items():
        lines.append(f"| {name} | {count} | {profile['label_correlation'].get(name, '')} |")
    lines += ["", profile["numeric_summary"].to_markdown()]
    return "\n".join(lines)


def distribution_png(frame: pd.DataFrame, contract: Contract, label_col: str) -> bytes:
    """Histograms of the numeric features most correlated with the label, split by class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numeric = frame[contract.numeric_features].astype("float64")
    strength = numeric.corrwith(frame[label_col].astype(float)).abs().fillna(0.0)
    names = list(strength.sort_values(ascending=False).index[:MAX_PLOTTED])
    cols = 4
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.4 * rows), dpi=80, squeeze=False)
    groups = list(frame.groupby(label_col))
    for ax, name in zip(axes.flat, names, strict=False):
        for label, group in groups[:10]:
            values = group[name].astype(float).dropna()
            if values.empty:
                continue
            ax.hist(
                values.clip(upper=values.quantile(0.99)),
                bins=30,
                alpha=0.45,
                label=contract.classes[int(label)],
            )
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
