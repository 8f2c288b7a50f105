"""The audit trail as operators meet it: `aimass promote`/`rollback` record who, what and why, `aimass history
--at` answers which version was champion at a time and why, and `aimass retire`/`unretire` switch a use case's
sensors and schedules in a real Dagster instance and its registry alias, and undo it all.

One real MLflow registry (SQLite) with three registered versions of credit_risk; no model is trained."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import instance_for_test
from mlflow.tracking import MlflowClient

from aimass_pipeline.cli import retire as retire_cli
from aimass_pipeline.cli.main import main
from aimass_pipeline.cli.status import collect_status
from aimass_pipeline.core import audit
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.orchestration.retirement import instigators, loaded_repository, running
from aimass_pipeline.settings import Settings
from aimass_pipeline_tests.registries import small_registry

UC = "credit_risk"


@pytest.fixture(scope="module")
def _registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three versions of credit_risk, none champion."""
    tags = [{"holdout.roc_auc": f"0.8{n}"} for n in range(3)]
    return small_registry(tmp_path_factory.mktemp("registry") / "mlflow.db", UC, tags)


@pytest.fixture
def home(aimass_home: Settings, _registry: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    shutil.copy(_registry, Path(aimass_home.mlflow_tracking_uri.removeprefix("sqlite:///")))
    # The bento build a promotion starts in the background is not what is tested here (no model to build).
    monkeypatch.setattr(
        "aimass_pipeline.deployment.background.start_bento_build", lambda s, uc: "no-build.log"
    )
    return aimass_home


def _at(capsys: pytest.CaptureFixture[str], when: dt.datetime) -> dict:
    assert main(["history", UC, "--at", when.isoformat(), "--json"]) == 0
    return json.loads(capsys.readouterr().out)["champion"]


def _now() -> dt.datetime:
    now = dt.datetime.now(dt.UTC)
    time.sleep(0.01)  # the next command's events are strictly later
    return now


def test_history_at_reconstructs_promote_rollback_promote(home: Settings, capsys) -> None:
    before = _now()
    assert main(["promote", UC, "1", "--reason", "first model"]) == 0
    t1 = _now()
    assert main(["promote", UC, "2", "--reason", "better on the holdout"]) == 0
    t2 = _now()
    assert main(["rollback", UC, "--reason", "complaints about v2"]) == 0
    t3 = _now()
    assert main(["promote", UC, "3"]) == 0
    t4 = _now()
    capsys.readouterr()

    assert _at(capsys, before) is None
    answers = {t: _at(capsys, t) for t in (t1, t2, t3, t4)}
    assert [answers[t]["version"] for t in (t1, t2, t3, t4)] == ["1", "2", "1", "3"]
    rolled_back = answers[t3]["became"]
    assert rolled_back["action"] == audit.ROLLBACK and rolled_back["who"] == getpass.getuser()
    assert rolled_back["evidence"]["reason"] == "complaints about v2"
    assert rolled_back["evidence"]["replaced"] == "2"
    assert answers[t2]["became"]["evidence"]["gate"] == {"holdout.roc_auc": "0.81"}

    events = audit.read(Lake(home.lake_url), UC)
    assert [(e["action"], e["evidence"]["version"]) for e in events] == [
        ("promote", "1"),
        ("promote", "2"),
        ("rollback", "1"),
        ("promote", "3"),
    ]
    audit.verify(events)
    assert main(["history", UC, "--at", t3.isoformat()]) == 0
    text = capsys.readouterr().out
    assert "version 1 was champion" in text and "ran rollback (complaints about v2)" in text


def test_history_at_refuses_a_time_it_cannot_read(home: Settings) -> None:
    with pytest.raises(SystemExit, match="not an ISO time"):
        main(["history", UC, "--at", "yesterday"])


@pytest.fixture
def instance(home: Settings) -> Iterator:
    with instance_for_test() as instance:
        yield instance


def test_retire_switches_everything_off_and_unretire_restores_it(home: Settings, instance) -> None:
    assert main(["promote", UC, "2"]) == 0
    client = MlflowClient(tracking_uri=home.mlflow_tracking_uri)
    use_cases = list(home.use_case_specs())
    with loaded_repository(instance, module="aimass_pipeline_tests.cli.retire_defs") as repo:

        def states() -> dict[str, bool]:
            items = instigators(repo, UC, use_cases) + instigators(repo, "breast_cancer", use_cases)
            return {item.name: running(instance, item) for item in items}

        before = states()
        assert before == {
            "credit_risk_landing_sensor": True,
            "credit_risk_drift_sensor": False,
            "credit_risk_monitoring_schedule": True,
            "breast_cancer_landing_sensor": True,
        }
        record = retire_cli.retire(home, UC, "product withdrawn", instance, repo)
        assert set(states().items()) == {
            ("credit_risk_landing_sensor", False),
            ("credit_risk_drift_sensor", False),
            ("credit_risk_monitoring_schedule", False),
            ("breast_cancer_landing_sensor", True),
        }
        assert client.get_model_version_by_alias(UC, "retired").version in (2, "2")
        assert client.get_model_version_by_alias(UC, "champion").version in (2, "2")
        assert collect_status(home)["use_cases"][UC]["retired"]["reason"] == "product withdrawn"
        assert collect_status(home)["use_cases"]["breast_cancer"]["retired"] is None
        assert record["last_champion"] == "2"
        with pytest.raises(SystemExit, match="already retired"):
            retire_cli.retire(home, UC, None, instance, repo)

        retire_cli.unretire(home, UC, "back on sale", instance, repo)
        assert states() == before
        assert "retired" not in client.get_registered_model(UC).aliases
        assert collect_status(home)["use_cases"][UC]["retired"] is None
    actions = [e["action"] for e in audit.read(Lake(home.lake_url), UC)]
    assert actions[-2:] == [audit.RETIRE, audit.UNRETIRE]


def test_a_changed_spec_is_recorded_once_with_the_hash_it_replaced(aimass_home: Settings) -> None:
    from aimass_pipeline.cli.audit_trail import record_spec_changes

    first = record_spec_changes(aimass_home)
    assert sorted(e["use_case"] for e in first) == sorted(aimass_home.use_case_specs())
    assert record_spec_changes(aimass_home) == [], "an unchanged spec is not recorded again"

    packaged = Path(__file__).resolve().parents[2] / "aimass_pipeline" / "specs" / "credit_risk.yaml"
    own = aimass_home.specs_dir / "credit_copy.yaml"
    own.parent.mkdir(parents=True, exist_ok=True)
    own.write_text(packaged.read_text().replace("name: credit_risk", "name: credit_copy", 1))
    [added] = record_spec_changes(aimass_home)
    own.write_text(own.read_text().replace("max_reject_share: 0.02", "max_reject_share: 0.05"))
    [changed] = record_spec_changes(aimass_home)
    assert (added["use_case"], changed["use_case"]) == ("credit_copy", "credit_copy")
    assert (
        changed["evidence"]["previous_sha256"] == added["evidence"]["sha256"] != changed["evidence"]["sha256"]
    )
    assert changed["evidence"]["spec"]["data"]["max_reject_share"] == 0.05
