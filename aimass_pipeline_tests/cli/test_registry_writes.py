"""The operator's promote and rollback written straight into the embedded registry (cli/registry_writes.py):
MLflow's own client must read back exactly what its SqlAlchemyStore would have written, and the SQL is only
used on the schema revision it was written against."""

import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from mlflow.store.db.utils import _get_latest_schema_revision
from mlflow.tracking import MlflowClient

from aimass_pipeline.cli import registry_writes
from aimass_pipeline.cli.stores import MLFLOW_SCHEMA, sqlite_registry
from aimass_pipeline.core.aliases import PROMOTED_BY
from aimass_pipeline.core.registry import champion_version, previous_version
from aimass_pipeline_tests.registries import small_registry

UC = "uc"


@pytest.fixture(scope="module")
def _registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Versions 1-4 of one model, 4 deleted, champion 1."""
    tags = [{"holdout.roc_auc": f"0.8{n}"} for n in range(4)]
    path = small_registry(tmp_path_factory.mktemp("registry") / "mlflow.db", UC, tags, champion="1")
    _client(path).delete_model_version(UC, "4")
    return path


@pytest.fixture
def db(_registry: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(_registry, tmp_path / "mlflow.db"))


def _client(db: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")


def _aliases(db: Path) -> tuple[str | None, str | None]:
    client = _client(db)
    champion, previous = champion_version(client, UC), previous_version(client, UC)
    return (champion and str(champion.version), previous and str(previous.version))


def test_the_sql_is_written_against_the_installed_mlflows_schema() -> None:
    # When MLflow's head moves, review registry_writes.py and stores.py against the new schema, then update.
    assert _get_latest_schema_revision() == MLFLOW_SCHEMA


def test_a_direct_promotion_is_what_mlflows_client_reads_back(db: Path) -> None:
    champion, previous = registry_writes.promote(db, UC, "2", by="operator")
    assert (champion.version, previous.version) == ("2", "1")
    assert champion.tags == {"holdout.roc_auc": "0.81", PROMOTED_BY: "operator"}
    assert _aliases(db) == ("2", "1")
    assert _client(db).get_model_version(UC, "2").tags[PROMOTED_BY] == "operator"
    # Again on the champion: nothing moves, previous is kept.
    registry_writes.promote(db, UC, "2", by="operator")
    assert _aliases(db) == ("2", "1")


def test_a_direct_rollback_swaps_champion_and_previous(db: Path) -> None:
    registry_writes.promote(db, UC, "3", by="operator")
    champion, previous = registry_writes.rollback(db, UC)
    assert (champion.version, previous.version) == ("1", "3") and _aliases(db) == ("1", "3")
    registry_writes.rollback(db, UC)
    assert _aliases(db) == ("3", "1")


@pytest.mark.parametrize("version", ["9", "4"], ids=["never-registered", "deleted"])
def test_a_missing_version_is_refused_in_mlflows_words_and_nothing_moves(db: Path, version: str) -> None:
    with pytest.raises(LookupError, match=rf"Model Version \(name={UC}, version={version}\) not found"):
        registry_writes.promote(db, UC, version, by="operator")
    assert _aliases(db) == ("1", None)
    assert PROMOTED_BY not in _client(db).get_model_version(UC, "1").tags


def test_nothing_to_roll_back_to_is_a_lookup_error(db: Path) -> None:
    with pytest.raises(LookupError, match="nothing to roll back to"):
        registry_writes.rollback(db, UC)
    assert _aliases(db) == ("1", None)


def test_concurrent_promotions_each_see_the_others_move(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two operators at once, each pausing between reading an alias and moving it: the write lock taken before
    the read orders them, so the later one's previous is the earlier one's champion (read-then-write without
    it: both read champion 1, and one fails on the lock or both leave previous at 1)."""
    read = registry_writes.SqliteAliases.version_of

    def slow_read(self, name: str, alias: str) -> str | None:
        found = read(self, name, alias)
        time.sleep(0.2)
        return found

    monkeypatch.setattr(registry_writes.SqliteAliases, "version_of", slow_read)
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def promote(version: str) -> None:
        start.wait()
        try:
            registry_writes.promote(db, UC, version, by="operator")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=promote, args=(v,)) for v in ("2", "3")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert _aliases(db) in {("3", "2"), ("2", "3")}


def test_a_store_at_another_schema_revision_goes_through_mlflows_client(db: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{db}"
    assert sqlite_registry(uri) == db
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'not-the-known-one'")
    assert sqlite_registry(uri) is None
    assert sqlite_registry(f"sqlite:///{tmp_path / 'not-yet.db'}") == tmp_path / "not-yet.db"
    assert sqlite_registry("postgresql://localhost/mlflow") is None
