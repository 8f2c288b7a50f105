"""Drill: the MLflow store (real PostgreSQL) becomes unreachable at the moment of promotion (issue 11)."""

import threading
import time
from collections.abc import Iterator

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from aimass_pipeline.core.registry import champion_version, ensure_store, previous_version, promote
from aimass_pipeline_tests.core.tcp_cut import CuttableProxy
from aimass_pipeline_tests.postgres import pg_server, scratch_database

UC = "uc"


@pytest.fixture(scope="module")
def store() -> Iterator[tuple[CuttableProxy, str]]:
    """An MLflow store on a scratch PostgreSQL database reached through a proxy the drill can cut."""
    server = pg_server()
    with scratch_database() as db:
        proxy = CuttableProxy(server["host"], server["port"])
        uri = f"postgresql+psycopg2://{server['user']}@127.0.0.1:{proxy.port}/{db}"
        ensure_store(uri)
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.create_registered_model(UC)
        try:
            yield proxy, uri
        finally:
            proxy.close()


class _CutOnFirstMove:
    """Cuts the network to the store right after the first alias moved: the worst moment."""

    def __init__(self, client: MlflowClient, proxy: CuttableProxy, outage_s: float | None) -> None:
        self._client, self.proxy, self.outage_s, self.moves = client, proxy, outage_s, 0

    def __getattr__(self, name: str):
        return getattr(self._client, name)

    def set_registered_model_alias(self, *args) -> None:
        self._client.set_registered_model_alias(*args)
        self.moves += 1
        if self.moves == 1:
            self.proxy.cut()
            if self.outage_s is not None:
                threading.Timer(self.outage_s, self.proxy.restore).start()


def _fresh_pair(client: MlflowClient) -> tuple[str, str]:
    """Two new versions; the first is champion."""
    old = client.create_model_version(UC, "unused-source").version
    new = client.create_model_version(UC, "unused-source").version
    client.set_registered_model_alias(UC, "champion", old)
    client.delete_registered_model_alias(UC, "previous") if previous_version(client, UC) else None
    return str(old), str(new)


def _aliases(client: MlflowClient) -> tuple[str | None, str | None]:
    champion, previous = champion_version(client, UC), previous_version(client, UC)
    return (champion and str(champion.version), previous and str(previous.version))


def test_a_short_outage_at_promotion_is_retried_to_a_whole_move(store) -> None:
    proxy, uri = store
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    old, new = _fresh_pair(client)
    logged: list[str] = []
    started = time.monotonic()
    assert promote(_CutOnFirstMove(client, proxy, 1.0), UC, new, expected=old, log=logged.append) == old
    took = time.monotonic() - started
    assert _aliases(client) == (new, old)
    assert logged and all("registry unreachable while promoting version" in line for line in logged), logged
    print(f"outage 1.0 s: promoted after {took:.1f} s and {len(logged)} retries")


def test_a_long_outage_fails_clearly_and_the_next_attempt_completes_the_move(store) -> None:
    proxy, uri = store
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    old, new = _fresh_pair(client)
    logged: list[str] = []
    with pytest.raises(MlflowException) as info:
        promote(_CutOnFirstMove(client, proxy, None), UC, new, expected=old, attempts=3, log=logged.append)
    assert info.value.error_code == "TEMPORARILY_UNAVAILABLE" and len(logged) == 2, (info.value, logged)
    proxy.restore()
    # After the failure: the champion has not moved (previous already names the champion: harmless).
    assert _aliases(client)[0] == old
    assert promote(client, UC, new, expected=old) == old
    assert _aliases(client) == (new, old)
