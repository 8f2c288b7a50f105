"""What a profile says about a free-text column: lengths, words per text, vocabulary, top terms, and the
share of words a reference profile never saw (out of vocabulary)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from aimass_pipeline.core.text_contract import document_frequencies, oov_share, tokens

TOP_TERMS = 20
# The sketch keeps the vocabulary for the next profile's OOV share; a larger one keeps its commonest words.
MAX_VOCABULARY = 20_000


def text_sketch(texts: pd.Series, reference: dict | None = None) -> dict:
    """Length (characters) and word-count quantiles, vocabulary size, top terms by document frequency, and
    with ``reference`` (an earlier sketch of the column) the out-of-vocabulary share against it."""
    present = [t for t in texts.tolist() if isinstance(t, str)]
    lengths = np.array([len(t) for t in present], dtype=float)
    words = np.array([len(tokens(t)) for t in present], dtype=float)
    counts, n = document_frequencies(present)
    quantiles = (0.0, 0.1, 0.5, 0.9, 1.0)

    def spread(values: np.ndarray) -> dict[str, float]:
        if not len(values):
            return {}
        return {f"q{int(q * 100)}": float(np.quantile(values, q)) for q in quantiles} | {
            "mean": round(float(values.mean()), 2)
        }

    common = counts.most_common(MAX_VOCABULARY)
    vocabulary = [word for word, _ in common]
    return {
        "texts": n,
        "length_chars": spread(lengths),
        "words": spread(words),
        "vocabulary_size": len(counts),
        "top_terms": {word: round(df / n, 4) for word, df in common[:TOP_TERMS]},
        "oov_share": round(oov_share(present, set(reference["vocabulary"])), 4) if reference else None,
        "vocabulary": sorted(vocabulary),
    }


def text_markdown(sketches: dict[str, dict]) -> str:
    lines = ["", "| text column | texts | length p50 (p10-p90) | words p50 | vocabulary | OOV share |"]
    lines.append("|---|---|---|---|---|---|")
    for name, s in sketches.items():
        length, words = s["length_chars"], s["words"]
        oov = "" if s["oov_share"] is None else f"{s['oov_share']:.1%}"
        lines.append(
            f"| {name} | {s['texts']} | {length.get('q50', 0):.0f} ({length.get('q10', 0):.0f}-"
            f"{length.get('q90', 0):.0f}) | {words.get('q50', 0):.0f} | {s['vocabulary_size']} | {oov} |"
        )
    return "\n".join(lines)
