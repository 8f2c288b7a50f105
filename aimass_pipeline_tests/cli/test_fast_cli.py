"""The read-only commands answer from the stores without importing the heavy libraries (issue 13 item 2):
asserted on what a fresh `aimass` process has imported, not on time (timed tests are forbidden)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aimass_pipeline_tests.conftest import ROOT, env_for

HEAVY = ("dagster", "mlflow", "torch", "xgboost", "great_expectations", "dbt", "bentoml", "sklearn", "pandas")

# main() in a fresh interpreter, then the top-level packages it imported, written where the test reads them.
_PROBE = """\
import json, sys
from aimass_pipeline.cli.main import main
import aimass_pipeline.deployment.background as background
# The bento a promotion builds in a detached child is not what is timed (the child pays MLflow and BentoML).
background.start_bento_build = lambda settings, use_case: "no-build.log"
try:
    code = main(sys.argv[2:])
except SystemExit as exc:
    code = exc.code
open(sys.argv[1], "w").write(json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def _probe(home: Path, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "probe.json"
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(out), *args],
        env=env_for(home),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.exists(), proc.stderr[-3000:]
    return proc, json.loads(out.read_text())


@pytest.fixture(scope="module")
def home_with_champion(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose registry holds credit_risk versions 1 (previous) and 2 (champion, gate tags), one
    Dagster run of the use case and one bento: what status and history read, made without a lifecycle run."""
    from dagster import DagsterInstance, asset, materialize
    from mlflow.tracking import MlflowClient

    from aimass_pipeline.settings import load_settings

    home = tmp_path_factory.mktemp("fast_cli") / "home"
    before = dict(os.environ)
    try:
        os.environ["AIMASS_HOME"] = str(home)
        settings = load_settings().prepare()
        client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
        client.create_registered_model("credit_risk")
        for version, auc in (("1", "0.81"), ("2", "0.84")):
            client.create_model_version(
                "credit_risk",
                f"file:///nowhere/{version}",
                tags={
                    "aimass.family": "xgboost",
                    "holdout.roc_auc": auc,
                    "gate.promote": "true",
                    "gate.reason": f"reason {version}",
                },
            )
        client.set_registered_model_alias("credit_risk", "previous", "1")
        client.set_registered_model_alias("credit_risk", "champion", "2")

        @asset
        def probe() -> int:
            return 1

        with DagsterInstance.get() as instance:
            result = materialize([probe], instance=instance, tags={"aimass/use_case": "credit_risk"})
        (home / "run_id").write_text(result.run_id)
        bento = settings.bentoml_home / "bentos" / "credit_risk" / "abc123"
        bento.mkdir(parents=True)
        (bento / "bento.yaml").write_text("name: credit_risk\ncreation_time: '2026-01-01T00:00:00+00:00'\n")
    finally:
        os.environ.clear()
        os.environ.update(before)
    return home


def test_status_answers_from_the_stores_without_heavy_imports(
    home_with_champion: Path, tmp_path: Path
) -> None:
    proc, probe = _probe(home_with_champion, tmp_path, "status", "--json")
    assert probe["code"] == 0, proc.stderr
    assert not set(HEAVY) & set(probe["modules"]), (
        f"status imported {sorted(set(HEAVY) & set(probe['modules']))}"
    )
    info = json.loads(proc.stdout)["use_cases"]["credit_risk"]
    assert info["champion"]["version"] == 2 and info["champion"]["primary_metric_value"] == pytest.approx(
        0.84
    )
    assert info["champion"]["family"] == "xgboost"
    assert info["bento"] == "credit_risk:abc123"
    run_id = (home_with_champion / "run_id").read_text()
    assert info["last_run"]["run_id"] == run_id and info["last_run"]["status"] == "SUCCESS"
    assert info["last_run"]["started_at"] and info["last_run"]["ended_at"]


def test_history_lists_versions_aliases_and_gate(home_with_champion: Path, tmp_path: Path) -> None:
    proc, probe = _probe(home_with_champion, tmp_path, "history", "credit_risk", "--json")
    assert probe["code"] == 0, proc.stderr
    assert not set(HEAVY) & set(probe["modules"]), (
        f"history imported {sorted(set(HEAVY) & set(probe['modules']))}"
    )
    versions = json.loads(proc.stdout)["versions"]
    assert [(v["version"], v["aliases"]) for v in versions] == [(2, ["champion"]), (1, ["previous"])]
    assert versions[0]["gate"] == {"promote": "true", "reason": "reason 2"}
    assert versions[0]["holdout_metrics"] == {"roc_auc": 0.84} and versions[0]["registered_at"]


@pytest.mark.parametrize("args", [["--help"], ["quarantine", "list", "--json"]])
def test_help_and_quarantine_list_import_nothing_heavy(tmp_path: Path, args: list[str]) -> None:
    proc, probe = _probe(tmp_path / "home", tmp_path, *args)
    assert probe["code"] == 0, proc.stderr
    assert not set(HEAVY) & set(probe["modules"]), (
        f"{args} imported {sorted(set(HEAVY) & set(probe['modules']))}"
    )


def test_promote_and_rollback_move_the_aliases_without_heavy_imports(
    home_with_champion: Path, tmp_path: Path
) -> None:
    """Last in this file: they move the aliases the tests above read, and put them back."""
    from mlflow.tracking import MlflowClient

    from aimass_pipeline.core.registry import champion_version, previous_version

    uri = f"sqlite:///{home_with_champion / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def aliases() -> tuple[str, str]:
        champion, previous = champion_version(client, "credit_risk"), previous_version(client, "credit_risk")
        return str(champion.version), str(previous.version)

    for args, after in (
        (["promote", "credit_risk", "1", "--reason", "v2 misbehaves"], ("1", "2")),
        (["rollback", "credit_risk"], ("2", "1")),
    ):
        proc, probe = _probe(home_with_champion, tmp_path, *args)
        assert probe["code"] == 0, proc.stderr
        assert not set(HEAVY) & set(probe["modules"]), (
            f"{args[0]} imported {sorted(set(HEAVY) & set(probe['modules']))}"
        )
        assert f"champion = version {after[0]}; previous = {after[1]}" in proc.stdout
        assert aliases() == after
    assert client.get_model_version("credit_risk", "1").tags["promoted_by"] == "operator"
