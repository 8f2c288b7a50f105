"""A registered version's decision threshold: untagged means the documented default; a malformed tag fails."""

from __future__ import annotations

import pytest

from aimass_pipeline.core.registry import MalformedThresholdError, threshold_of
from aimass_pipeline.core.scoring import DEFAULT_THRESHOLD


def test_an_untagged_version_uses_the_documented_default() -> None:
    assert threshold_of({}, "credit_risk version 3") == DEFAULT_THRESHOLD


def test_a_tagged_version_uses_its_tag() -> None:
    assert threshold_of({"threshold": "0.31"}, "credit_risk version 3") == pytest.approx(0.31)


@pytest.mark.parametrize("value", ["abc", "", "nan", "1.5", "-0.1", "inf"])
def test_a_malformed_threshold_tag_fails_naming_the_version_and_value(value: str) -> None:
    with pytest.raises(MalformedThresholdError) as raised:
        threshold_of({"threshold": value}, "credit_risk version 3")
    message = str(raised.value)
    assert "credit_risk version 3" in message, message
    assert repr(value) in message, message
