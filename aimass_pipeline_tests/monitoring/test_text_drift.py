"""Text figures on small data: a profile's lengths, vocabulary and OOV share; drift over the top terms."""

import pandas as pd

from aimass_pipeline.analysis.text_profile import text_sketch
from aimass_pipeline.monitoring.drift import feature_drift

REFERENCE = pd.Series(
    ["a laptop was stolen from the car", "paper records were stolen", "the laptop was lost"] * 40
)
SAME = pd.Series(["the laptop was stolen", "paper records were lost"] * 40)
OTHER = pd.Series(["ransomware encrypted the billing server", "phishing email exposed claims"] * 40)


def test_a_profile_reports_lengths_vocabulary_and_oov_share() -> None:
    first = text_sketch(REFERENCE)
    assert first["length_chars"]["q0"] == len("the laptop was lost") and first["vocabulary_size"] == 10
    assert first["top_terms"]["stolen"] == round(80 / 120, 4) and first["oov_share"] is None
    assert text_sketch(SAME, first)["oov_share"] == 0.0
    assert text_sketch(OTHER, first)["oov_share"] > 0.8


def test_text_drift_flags_new_words_and_not_the_same_words() -> None:
    def report(current: pd.Series):
        frame = lambda s: pd.DataFrame({"report": s})  # noqa: E731
        return feature_drift(frame(REFERENCE), frame(current), [], [], 0.2, 0.01, 0.3, text=["report"])

    same, other = report(REFERENCE[::-1].reset_index(drop=True)).rows[0], report(OTHER).rows[0]
    assert (same.kind, same.drifted, same.statistic) == ("text", False, 0.0)
    assert other.drifted and other.psi > 1 and other.statistic > 0.8
