"""A data profile of a table: counts, missingness, class balance, distributions, correlations, plus PNGs.

A profile is plain JSON-able data with a compact ``sketch`` (means, missing rates, quantiles, category
shares) so ``profile_changes.compare_profiles`` can compare two profiles without re-reading their rows.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from aimass_pipeline.analysis.profile_changes import category_sketch, numeric_sketch
from aimass_pipeline.analysis.text_profile import text_markdown, text_sketch
from aimass_pipeline.core.contracts import Contract

MAX_PLOTTED = 16
TOP_PAIRS = 10


def typed_batch(raw: pd.DataFrame, contract: Contract, label_col: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """A landed batch's text columns typed for profiling, with the label id (the spec's class order).

    Unlike cleaning, nothing is rejected: a value that is not a number, an unknown category or an unknown
    class is profiled as it is (numbers as missing) and counted per column in the second return value.
    """
    missing = [c for c in contract.raw_columns if c not in raw.columns]
    if missing:
        raise KeyError(f"{contract.use_case}: the batch lacks the contract's columns {missing}")
    out = pd.DataFrame({contract.key: raw[contract.key].astype("string").str.strip()})
    invalid: dict[str, int] = {}
    for col in contract.features:
        text = raw[col.name].astype("string").str.strip().replace("", pd.NA)
        if col.kind == "category":
            values = text.str.lower()
            invalid[col.name] = int((values.notna() & ~values.isin(col.categories)).sum())
            out[col.name] = values.astype(object).where(values.notna(), None)
        elif col.kind == "text":
            out[col.name] = raw[col.name].astype(object).where(raw[col.name].notna(), None)
        else:
            values = pd.to_numeric(text, errors="coerce").astype("float64")
            invalid[col.name] = int((text.notna() & values.isna()).sum())
            out[col.name] = values
    target = raw[contract.target].astype("string").str.strip().str.lower()
    index = {name: i for i, name in enumerate(contract.classes)}
    out[label_col] = target.map(index).astype("float64")
    invalid[contract.target] = int(out[label_col].isna().sum())
    return out, {k: v for k, v in invalid.items() if v}


def _top_pairs(numeric: pd.DataFrame) -> list[dict]:
    """The most correlated feature pairs (absolute Pearson r), each pair once."""
    varying = numeric.loc[:, numeric.nunique(dropna=True) > 1]
    if varying.shape[1] < 2:
        return []
    corr = varying.corr()
    upper = corr.where(np.triu(np.ones(corr.shape, dtype=bool), k=1)).stack()
    strongest = upper.reindex(upper.abs().sort_values(ascending=False).index)[:TOP_PAIRS]
    return [{"a": a, "b": b, "r": round(float(r), 4)} for (a, b), r in strongest.items()]


def profile_table(
    frame: pd.DataFrame, contract: Contract, label_col: str, name: str = "", reference: dict | None = None
) -> dict:
    """The profile of ``frame``; rows without a known label count everywhere except in the class balance.
    ``reference``, the profile this one will be compared with, sets the bins of the numeric PSI."""
    if frame.empty:
        raise ValueError(f"cannot profile an empty table ({name or contract.use_case})")
    missing = {c: int(frame[c].isna().sum()) for c in contract.feature_names}
    ref_numeric = reference["sketch"]["numeric"] if reference else {}
    ref_text = reference["sketch"].get("text", {}) if reference else {}
    numeric = frame[contract.numeric_features].astype("float64")
    labels = frame[label_col].astype("float64")
    counts = labels.dropna().astype(int).value_counts().sort_index()
    known = int(counts.sum())
    balance = (
        {contract.classes[int(k)]: round(float(v) / known, 4) for k, v in counts.items()} if known else {}
    )
    # Correlation with the label is meaningful for a binary target; for many classes it is only indicative.
    correlations = numeric.corrwith(labels).round(4).fillna(0.0).to_dict()
    return {
        "name": name,
        "rows": len(frame),
        "columns": len(contract.feature_names),
        "missing_values": int(sum(missing.values())),
        "missing_by_column": missing,
        "unlabelled_rows": len(frame) - known,
        "class_counts": {contract.classes[int(k)]: int(v) for k, v in counts.items()},
        "class_balance": balance,
        "numeric_summary": numeric.describe().T.round(3) if len(numeric.columns) else pd.DataFrame(),
        "categorical_levels": {
            c: {str(k): int(v) for k, v in frame[c].value_counts(dropna=False).items()}
            for c in contract.categorical_features
        },
        "label_correlation": correlations,
        "top_correlated_pairs": _top_pairs(numeric),
        "sketch": {
            "numeric": {c: numeric_sketch(numeric[c], ref_numeric.get(c)) for c in contract.numeric_features},
            "categorical": {c: category_sketch(frame[c]) for c in contract.categorical_features},
            "text": {c: text_sketch(frame[c], ref_text.get(c)) for c in contract.text_features},
        },
    }


def profile_json(profile: dict) -> dict:
    """The profile without its DataFrame part, for JSON (the lake, metadata, the next comparison)."""
    return {k: v for k, v in profile.items() if k != "numeric_summary"}


def profile_markdown(profile: dict) -> str:
    balance = ", ".join(f"{k} {v:.1%}" for k, v in profile["class_balance"].items())
    lines = [
        f"**{profile['rows']} rows**, {profile['columns']} features, {profile['missing_values']} missing values; "
        f"classes: {balance}; rows without a known class: {profile['unlabelled_rows']}",
        "",
        "| feature | missing | corr. with label |",
        "|---|---|---|",
    ]
    for name, count in profile["missing_by_column"].items():
        lines.append(f"| {name} | {count} | {profile['label_correlation'].get(name, '')} |")
    if profile["top_correlated_pairs"]:
        lines += ["", "| feature pair | r |", "|---|---|"]
        lines += [f"| {p['a']} × {p['b']} | {p['r']} |" for p in profile["top_correlated_pairs"]]
    if profile["sketch"].get("text"):
        lines.append(text_markdown(profile["sketch"]["text"]))
    if len(profile["numeric_summary"]):
        lines += ["", profile["numeric_summary"].to_markdown()]
    return "\n".join(lines)


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def distribution_png(frame: pd.DataFrame, contract: Contract, label_col: str) -> bytes:
    """Histograms of the numeric features most correlated with the label, split by class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numeric = frame[contract.numeric_features].astype("float64")
    for name in contract.text_features:  # a text's length in characters, the number a text table has
        numeric[f"{name} (characters)"] = frame[name].str.len().astype("float64")
    strength = numeric.corrwith(frame[label_col].astype(float)).abs().fillna(0.0)
    names = list(strength.sort_values(ascending=False).index[:MAX_PLOTTED])
    cols = 4
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.4 * rows), dpi=80, squeeze=False)
    groups = list(numeric.assign(**{label_col: frame[label_col]}).groupby(label_col))
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
    return _png(fig)


def correlation_png(frame: pd.DataFrame, contract: Contract) -> bytes:
    """Heat map of the Pearson correlations between the numeric features."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    corr = frame[contract.numeric_features].astype("float64").corr().fillna(0.0)
    if corr.empty:  # a table of text alone: nothing to correlate, an empty map says so
        corr = pd.DataFrame([[0.0]], index=["(no numeric features)"], columns=["(no numeric features)"])
    size = min(10.0, 2.0 + 0.25 * len(corr))
    fig, ax = plt.subplots(figsize=(size, size * 0.85), dpi=80)
    image = ax.imshow(corr.to_numpy(), cmap="coolwarm", vmin=-1, vmax=1)
    if len(corr) <= 20:
        ax.set_xticks(range(len(corr)), corr.columns, rotation=90, fontsize=7)
        ax.set_yticks(range(len(corr)), corr.columns, fontsize=7)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title("feature correlations", fontsize=9)
    fig.tight_layout()
    return _png(fig)
