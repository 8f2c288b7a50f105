"""Canary routing: one entity always sees one model, and the realised share is the requested one."""

import pytest

from aimass_pipeline.core.routing import bucket, entity_key, routes_to_challenger


def test_routing_is_sticky_per_entity_and_the_share_is_within_two_points() -> None:
    keys = [entity_key({"Age": 20 + i % 50, "Amount": i, "Home": "rent"}) for i in range(5_000)]
    for share in (10.0, 50.0):
        first = [routes_to_challenger("credit_risk", k, share) for k in keys]
        again = [routes_to_challenger("credit_risk", k, share) for k in reversed(keys)][::-1]
        assert first == again
        assert abs(100 * sum(first) / len(keys) - share) <= 2.0, (share, sum(first))
    # Raising the share only adds entities: none moves back to the champion.
    at10 = {k for k in keys if routes_to_challenger("credit_risk", k, 10)}
    at50 = {k for k in keys if routes_to_challenger("credit_risk", k, 50)}
    assert at10 < at50


def test_the_key_ignores_field_order_and_use_cases_split_independently() -> None:
    assert entity_key({"a": 1, "b": "x"}) == entity_key({"b": "x", "a": 1})
    keys = [str(i) for i in range(2_000)]
    same = sum((bucket("a", k) < 0.5) == (bucket("b", k) < 0.5) for k in keys)
    assert 0.45 < same / len(keys) < 0.55
    with pytest.raises(ValueError, match="percentage"):
        routes_to_challenger("a", "k", 150)
