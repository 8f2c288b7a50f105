"""Promotion is a compare-and-set on the champion the decision read, and survives a store that stops
answering mid-move (issue 11, fault 6 and the registry drill)."""

import shutil
import threading
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE
from mlflow.tracking import MlflowClient

from aimass_pipeline.core.registry import (
    PromotionConflict,
    champion_version,
    previous_version,
    promote,
)
from aimass_pipeline_tests.registries import small_registry

UC = "uc"


@pytest.fixture(scope="module")
def _registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Versions 1-3 of one model, champion 1."""
    return small_registry(tmp_path_factory.mktemp("registry") / "mlflow.db", UC, [{}, {}, {}], champion="1")


@pytest.fixture
def client(_registry: Path, tmp_path: Path) -> MlflowClient:
    shutil.copy(_registry, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _aliases(client: MlflowClient) -> tuple[str | None, str | None]:
    champion, previous = champion_version(client, UC), previous_version(client, UC)
    return (champion and str(champion.version), previous and str(previous.version))


def test_a_gate_that_decided_on_an_old_champion_loses_to_an_operator(client: MlflowClient) -> None:
    """The gate reads champion 1 and decides on version 3; meanwhile an operator promotes version 2."""
    read, decided, errors = threading.Event(), threading.Event(), []

    def gate() -> None:
        current = champion_version(client, UC)
        read.set()
        decided.wait(30)  # the gate's holdout scoring and paired test happen here
        try:
            promote(client, UC, "3", expected=str(current.version))
        except PromotionConflict as exc:
            errors.append(str(exc))

    def operator() -> None:
        read.wait(30)
        promote(client, UC, "2", expected=str(champion_version(client, UC).version))
        decided.set()

    threads = [threading.Thread(target=gate), threading.Thread(target=operator)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert _aliases(client) == ("2", "1"), f"the gate overwrote the operator's promotion: {_aliases(client)}"
    assert len(errors) == 1, "the gate's late decision was not reported"
    assert "version 1 to version 2" in errors[0] and "version 3 was NOT promoted" in errors[0], errors[0]


def test_a_later_operator_promotion_wins_over_an_earlier_gate(client: MlflowClient) -> None:
    assert promote(client, UC, "3", expected="1") == "1"
    assert promote(client, UC, "2", expected="3") == "3"
    assert _aliases(client) == ("2", "3")


class _FlakyStore:
    """The registry client, with the store gone for ``outage`` alias writes after the first one."""

    def __init__(self, client: MlflowClient, outage: int) -> None:
        self._client, self.outage, self.writes = client, outage, 0

    def __getattr__(self, name: str):
        return getattr(self._client, name)

    def set_registered_model_alias(self, *args) -> None:
        self.writes += 1
        if 1 < self.writes <= 1 + self.outage:
            # What MLflow's SQL store raises for a lost connection (sqlalchemy OperationalError).
            raise MlflowException("connection to server refused", error_code=TEMPORARILY_UNAVAILABLE)
        self._client.set_registered_model_alias(*args)


def test_an_outage_mid_move_is_retried_to_a_consistent_pair(client: MlflowClient) -> None:
    flaky, logged = _FlakyStore(client, outage=2), []
    assert promote(flaky, UC, "3", expected="1", log=logged.append) == "1"
    assert _aliases(client) == ("3", "1")
    assert len(logged) == 2 and "attempt 1 of" in logged[0] and "version 3" in logged[0], logged


def test_an_outage_longer_than_the_retries_fails_clearly_and_leaves_the_champion(
    client: MlflowClient,
) -> None:
    flaky = _FlakyStore(client, outage=100)
    with pytest.raises(MlflowException, match="connection to server refused"):
        promote(flaky, UC, "3", expected="1", attempts=2, log=lambda _: None)
    champion, _ = _aliases(client)
    assert champion == "1", "the champion moved although the promotion failed"
    # The operator (or the next gate) re-runs it once the store is back: it completes the same move.
    assert promote(client, UC, "3", expected="1") == "1"
    assert _aliases(client) == ("3", "1")


def test_a_rollback_swaps_the_pair_and_loses_to_a_move_it_did_not_see(client: MlflowClient) -> None:
    from aimass_pipeline.core.registry import rollback

    promote(client, UC, "2", expected="1")
    assert rollback(client, UC) == ("1", "2") and _aliases(client) == ("1", "2")
    promote(client, UC, "3", expected="1")
    real_champion = client.get_model_version_by_alias
    reads = []

    def stale_then_real(name: str, alias: str):
        # The rollback's first read sees champion 1 (before a gate moved it to 3), the CAS re-read sees 3.
        reads.append(alias)
        if len(reads) == 1:
            return client.get_model_version(UC, "1")
        return real_champion(name, alias)

    client.get_model_version_by_alias = stale_then_real
    with pytest.raises(PromotionConflict, match="from version 1 to version 3"):
        rollback(client, UC)
    client.get_model_version_by_alias = real_champion
    assert _aliases(client) == ("3", "1")
