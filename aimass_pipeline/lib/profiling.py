"""A data profile of a table: counts, missingness, class balance, distributions, plus a PNG."""

from __future__ import annotations

import io

import pandas as pd

from aimass_pipeline.lib.contracts import Contract


def profile_table(frame: pd.DataFrame, contract: Contract, target_col: str) -> dict:
    if frame.empty:
        raise ValueError("cannot profile an empty table")
    missing = {c: int(frame[c].isna().sum()) for c in contract.feature_names}
    numeric = frame[contract.numeric_features].astype("float64")
    correlations = numeric.corrwith(frame[target_col].astype(float)).round(4).fillna(0.0).to_dict()
    return {
        "rows": len(frame),
        "columns": len(contract.feature_names),
        "missing_values": int(sum(missing.values())),
        "missing_by_column": missing,
        "positive_rate": float(frame[target_col].mean()),
        "numeric_summary": numeric.describe().T.round(3),
        "categorical_levels": {
            c: frame[c].value_counts(dropna=False).to_dict() for c in contract.categorical_features
        },
        "target_correlation": correlations,
    }


def profile_markdown(profile: dict) -> str:
    lines = [
        f"**{profile['rows']} rows**, {profile['columns']} features, {profile['missing_values']} missing values, "
        f"positive rate {profile['positive_rate']:.3f}",
        "",
        "| feature | missing | corr. with target |",
        "|---|---|---|",
    ]
    for name, count in profile["missing_by_column"].items():
        corr = profile["target_correlation"].get(name, "")
        lines.append(f"| {name} | {count} | {corr} |")
    lines += ["", profile["numeric_summary"].to_markdown()]
    return "\n".join(lines)


def distribution_png(frame: pd.DataFrame, contract: Contract, target_col: str) -> bytes:
    """Histograms of every numeric feature, split by target class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = contract.numeric_features
    cols = 4
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.4 * rows), dpi=80)
    for ax, name in zip(axes.flat, names, strict=False):
        for label, group in frame.groupby(target_col):
            values = group[name].astype(float).dropna()
            ax.hist(
                values.clip(upper=values.quantile(0.99)), bins=30, alpha=0.55, label=f"{target_col}={label}"
            )
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
