"""One broken spec in $AIMASS_HOME/specs never takes the platform down (issue 11, fault 14): the code location
loads every other use case and shows the error as a failing asset, and every CLI command answers a bad input
with one line and exit 2 (or 1), never a traceback."""

import importlib
import subprocess

import pytest
from dagster import AssetKey, materialize

from aimass_pipeline.cli.main import main
from aimass_pipeline.core.specs import PACKAGED_SPECS
from aimass_pipeline.settings import Settings
from aimass_pipeline_tests.conftest import AIMASS, ROOT, env_for

BROKEN = "fraud"


@pytest.fixture
def broken_home(aimass_home: Settings) -> Settings:
    """A home with an operator's spec whose task is not one AIMass knows."""
    text = (PACKAGED_SPECS / "breast_cancer.yaml").read_text()
    text = text.replace("name: breast_cancer", f"name: {BROKEN}").replace("task: binary", "task: regression")
    aimass_home.specs_dir.mkdir(parents=True, exist_ok=True)
    (aimass_home.specs_dir / f"{BROKEN}.yaml").write_text(text)
    return aimass_home


def test_the_code_location_loads_the_others_and_shows_the_broken_spec(broken_home: Settings) -> None:
    import aimass_pipeline.definitions as location

    defs = importlib.reload(location).defs
    graph = defs.resolve_asset_graph()
    keys = {key.path[0] for key in graph.get_all_asset_keys()}
    assert {"credit_risk", "breast_cancer", "digits", BROKEN} <= keys
    assert defs.resolve_job_def("credit_risk_lifecycle") is not None
    spec_asset = defs.resolve_assets_def(AssetKey([BROKEN, "spec"]))
    description = spec_asset.descriptions_by_key[AssetKey([BROKEN, "spec"])]
    assert f"{BROKEN}.yaml" in description and "task" in description, description
    result = materialize([spec_asset], raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "task" in failure and f"{BROKEN}.yaml" in failure, failure


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """main() as the console script runs it: SystemExit("message") prints the message and exits 1."""
    try:
        code = main(argv)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=__import__("sys").stderr)
            code = 1
        else:
            code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        (["run", "--use-case", BROKEN], 2, "task"),
        (["ingest", "--use-case", BROKEN], 2, "task"),
        (["serve", BROKEN], 2, "task"),
        (["promote", BROKEN, "1"], 2, "task"),
        (["rollback", BROKEN], 2, "task"),
        (["quarantine", "list", "--use-case", BROKEN], 2, "task"),
        (["quarantine", "retry", BROKEN, "x.csv"], 2, "task"),
        (["promote", "nosuch", "1"], 1, "unknown use case 'nosuch'"),
        (["quarantine", "retry", "credit_risk", "nothing.csv"], 1, "nothing.csv"),
        (["trace", "no-such-prediction"], 1, "no-such-prediction"),
    ],
)
def test_every_command_answers_a_bad_input_in_one_line(
    broken_home: Settings, capsys: pytest.CaptureFixture, argv: list[str], code: int, says: str
) -> None:
    got, out, err = _run_cli(argv, capsys)
    assert "Traceback" not in err, err
    lines = [line for line in (out + err).splitlines() if says in line]
    assert got == code and len(lines) == 1, f"exit {got}, lines naming {says!r}: {lines}\n{out}\n{err}"
    if code == 2:
        assert f"{BROKEN}.yaml" in lines[0], lines[0]


@pytest.mark.parametrize(
    ("env", "argv", "says"),
    [
        ({"AIMASS_ENV": "staging"}, ["up"], "AIMASS_ENV must be"),
        ({"AIMASS_ENV": "prod", "AIMASS_PG_USER": ""}, ["run"], "AIMASS_PG_USER"),
        ({"AIMASS_ENV": "staging"}, ["status"], "AIMASS_ENV must be"),
    ],
)
def test_settings_aimass_cannot_use_exit_2_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, env: dict, argv: list[str], says: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    got, out, err = _run_cli(argv, capsys)
    assert got == 2 and "Traceback" not in err and err.strip().count("\n") == 0 and says in err, (got, err)


def test_status_reports_the_healthy_use_cases_and_names_the_broken_spec(broken_home: Settings) -> None:
    result = subprocess.run(
        [AIMASS, "status"],
        env=env_for(broken_home.home),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("credit_risk", "breast_cancer", "digits"):
        assert f"- {name}: champion none" in result.stdout, result.stdout
    broken = [line for line in result.stdout.splitlines() if line.startswith(f"- {BROKEN}:")]
    assert len(broken) == 1 and f"{BROKEN}.yaml" in broken[0] and "task" in broken[0], result.stdout
