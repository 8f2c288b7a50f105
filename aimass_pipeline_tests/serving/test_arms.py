"""A service worker's arms without a server: a version that cannot be loaded stays off and says why (the
canary's guard stops it), and a canary that fails a request hands it to the champion."""

from pathlib import Path

from aimass_pipeline.core import rollout
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.serving.arms import RolloutArms
from aimass_pipeline.serving.served_model import ServedModel

UC = "credit_risk"
CHAMPION = ServedModel(model=None, name=UC, version="1", threshold=0.5)


def _load(version: str) -> ServedModel:
    if version == "3":
        raise ValueError("cannot score its own input example")
    return ServedModel(model=None, name=UC, version=version, threshold=0.5)


def test_an_unloadable_canary_stays_off_and_its_counters_say_why(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    state = rollout.start_canary(lake, UC, "3", 100.0, "1", rollout.DecisionRule())
    arms = RolloutArms(UC, lake, 1.0, _load, None, "w1")
    arms.poll_once()
    assert arms.canary is None
    (stats,) = rollout.read_stats(lake, UC, state.canary.id)  # type: ignore[union-attr]
    assert "ValueError: cannot score" in stats["load_error"]
    served, _ = arms.answer(CHAMPION, [{"Age": 30}], "r", lambda model, rows, rid, role: [{"role": role}])
    assert served is CHAMPION


def test_a_failing_canary_request_is_answered_by_the_champion_and_counted(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    rollout.start_canary(lake, UC, "2", 100.0, "1", rollout.DecisionRule())
    arms = RolloutArms(UC, lake, 1.0, _load, None, "w1")
    arms.poll_once()

    def score(model: ServedModel, rows: list, request_id: str, role: str) -> list:
        if role == "canary":
            raise RuntimeError("broken canary")
        return [{"prediction_id": "p", "role": role}]

    served, outputs = arms.answer(CHAMPION, [{"Age": 30}], "r", score)
    assert served is CHAMPION and outputs == [{"prediction_id": "p", "role": "served"}]
    snapshot = arms.stats.snapshot()
    assert snapshot["canary"]["errors"] == 1 and snapshot["served"]["requests"] == 1
