"""Drift of a free-text feature: PSI over the reference's top terms (their share of the word occurrences,
plus one bucket for every other word), and the share of served words the reference never saw (OOV)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from aimass_pipeline.core.text_contract import oov_share, tokens

TOP_TERMS = 50
OTHER = "(other words)"
# More than a quarter of the served words unknown to the training data: the model reads mostly noise.
OOV_SHARE_LIMIT = 0.25


def _words(texts: pd.Series) -> list[list[str]]:
    return [tokens(t) for t in texts.tolist() if isinstance(t, str)]


def term_counts(reference: pd.Series, current: pd.Series) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Occurrences of the reference's commonest words (by occurrence) in each, plus the rest in OTHER."""
    ref_words = [w for words in _words(reference) for w in words]
    cur_words = [w for words in _words(current) for w in words]
    top = pd.Series(ref_words, dtype=object).value_counts().index[:TOP_TERMS].tolist() if ref_words else []
    levels = [*top, OTHER]

    def count(words: list[str]) -> np.ndarray:
        series = pd.Series(words, dtype=object)
        known = series.where(series.isin(top), OTHER)
        return known.value_counts().reindex(levels, fill_value=0).to_numpy()

    return levels, count(ref_words), count(cur_words)


def compare_text(
    reference: pd.Series,
    current: pd.Series,
    psi_threshold: float,
    psi: Callable[[np.ndarray, np.ndarray], float],
) -> tuple[float, float, bool]:
    """(PSI over the top terms, the served words' OOV share against the reference vocabulary, drifted):
    drifted when the PSI passes ``psi_threshold`` or the OOV share passes OOV_SHARE_LIMIT."""
    _, ref_counts, cur_counts = term_counts(reference, current)
    value = psi(ref_counts, cur_counts)
    vocabulary = {w for words in _words(reference) for w in words}
    oov = oov_share(current.tolist(), vocabulary)
    return value, oov, value > psi_threshold or oov > OOV_SHARE_LIMIT
