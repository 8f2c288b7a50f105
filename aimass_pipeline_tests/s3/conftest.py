"""A real S3-compatible server for the tests, one per session (see seaweed.py)."""

from collections.abc import Iterator

import pytest

from aimass_pipeline_tests.s3.seaweed import S3Server, weed_mini


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    try:
        with weed_mini(tmp_path_factory.mktemp("seaweedfs")) as server:
            yield server
    except RuntimeError as exc:
        pytest.fail(str(exc))
