"""The retrain trigger's rules: launch once per drift report, never within the cool-down."""

from aimass_pipeline.monitoring.retrain_trigger import Signal, TriggerState, decide

COOLDOWN = 600.0


def _drift(storage_id: int, recommended: bool = True, asset: str = "feature_drift") -> Signal:
    return Signal(asset, storage_id, f"run{storage_id:04d}xxxx", recommended, f"report {storage_id}")


def test_launch_then_cooldown_then_same_event_then_new_event() -> None:
    first = decide([_drift(10)], TriggerState(), now=1000.0, cooldown_s=COOLDOWN)
    assert first.launch and first.trigger.storage_id == 10
    assert first.state.last_launch == 1000.0 and first.state.acted_on == {"feature_drift": 10}

    state = TriggerState.loads(first.state.dumps())
    within = decide([_drift(11)], state, now=1300.0, cooldown_s=COOLDOWN)
    assert not within.launch and "cool-down" in within.reason and within.state == state

    same = decide([_drift(10)], state, now=5000.0, cooldown_s=COOLDOWN)
    assert not same.launch and "already acted on" in same.reason

    new = decide([_drift(11)], state, now=5000.0, cooldown_s=COOLDOWN)
    assert new.launch and new.trigger.storage_id == 11 and new.state.last_launch == 5000.0


def test_only_recommending_latest_reports_count() -> None:
    quiet = decide([_drift(5, recommended=False)], TriggerState(), now=0.0, cooldown_s=0)
    assert not quiet.launch and "no report recommends" in quiet.reason

    both = decide(
        [_drift(7), _drift(8, asset="prediction_drift")], TriggerState(), now=0.0, cooldown_s=COOLDOWN
    )
    assert both.launch and both.trigger.asset == "prediction_drift"
    assert both.state.acted_on == {"feature_drift": 7, "prediction_drift": 8}, (
        "one launch covers both reports"
    )


def test_empty_cursor_and_no_reports() -> None:
    assert TriggerState.loads(None) == TriggerState() == TriggerState.loads("")
    assert "no monitoring report yet" in decide([], TriggerState(), 0.0, 0.0).reason
