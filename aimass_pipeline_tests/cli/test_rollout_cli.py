"""`aimass shadow` / `aimass canary`: an operator's mistake is one line and exit 1, never a traceback or a state
change (the happy paths run against a real service in serving/rollout_checks.py)."""

import pytest

from aimass_pipeline.cli.main import main
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.rollout import read_state
from aimass_pipeline.settings import Settings


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["canary", "credit_risk", "--stop"], "no canary is running"),
        (["shadow", "credit_risk", "--stop"], "no shadow is running"),
        (["shadow", "credit_risk"], "name the version"),
        (["canary", "credit_risk", "2", "--share", "0"], "--share must be in (0, 100]"),
        (["canary", "credit_risk", "2", "--alpha", "0.9"], "alpha"),
        (["canary", "credit_risk", "2"], "does not exist"),
        (["canary", "no_such_case", "2"], "unknown use case"),
    ],
)
def test_mistakes_are_one_line_and_change_nothing(
    aimass_home: Settings, argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert message in str(exit_info.value.code)
    state = read_state(Lake(aimass_home.lake_url), "credit_risk")
    assert state.canary is None and state.shadow is None


def test_status_shows_the_running_canary_and_shadow(
    aimass_home: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from aimass_pipeline.core.rollout import DecisionRule, start_canary, start_shadow

    lake = Lake(aimass_home.lake_url)
    start_shadow(lake, "credit_risk", "3", 100.0, "1")
    start_canary(lake, "credit_risk", "2", 10.0, "1", DecisionRule(alpha=0.01))
    assert main(["status"]) == 0
    assert "shadow version 3 at 100 %; canary version 2 at 10 %" in capsys.readouterr().out
    assert main(["status", "--json"]) == 0
    serving = json.loads(capsys.readouterr().out)["use_cases"]["credit_risk"]["serving"]
    assert serving["canary"]["rule"]["alpha"] == 0.01 and serving["shadow"]["share"] == 100.0
