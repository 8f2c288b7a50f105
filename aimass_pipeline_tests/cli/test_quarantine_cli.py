import getpass
import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from aimass_pipeline.collection.ingestion.stream import ingest_file
from aimass_pipeline.collection.quarantine import check_name, quarantine
from aimass_pipeline.core import audit
from aimass_pipeline.core.errors import DataContractError
from aimass_pipeline.core.lake import Lake
from aimass_pipeline_tests.conftest import AIMASS, CREDIT_RISK, ROOT, env_for


def _aimass(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [AIMASS, *args], env=env_for(home), cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def _quarantine(home: Path, name: str, data: bytes) -> Path:
    landing = home / "landing" / "credit_risk"
    landing.mkdir(parents=True, exist_ok=True)
    (landing / name).write_bytes(data)
    with pytest.raises(DataContractError) as caught:
        check_name(landing / name)
        ingest_file(
            str(landing / name),
            CREDIT_RISK,
            batch_id="b1",
            out_path=str(home / "out.parquet"),
            rejects_path=str(home / "rejects.parquet"),
        )
    return quarantine(landing / name, caught.value, home / "quarantine" / "credit_risk")


def test_list_as_json_and_retry(tmp_path: Path, credit_frame: pd.DataFrame) -> None:
    home = tmp_path / "home"
    assert json.loads(_aimass(home, "quarantine", "list", "--json").stdout) == []
    moved = _quarantine(
        home, "März batch.csv", credit_frame.head(5).drop(columns=["Job"]).to_csv(index=False).encode()
    )

    listed = _aimass(home, "quarantine", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [entry] = json.loads(listed.stdout)
    assert entry["use_case"] == "credit_risk" and entry["file"] == "März batch.csv"
    assert (entry["rule"], entry["column"], entry["quarantined_file"]) == (
        "columns.missing",
        "Job",
        moved.name,
    )
    assert set(entry) >= {"sha256", "message", "rows", "quarantined_at"}
    assert "März batch.csv" in _aimass(home, "quarantine", "list").stdout

    retried = _aimass(home, "quarantine", "retry", "credit_risk", "März batch.csv")
    assert retried.returncode == 0, retried.stderr
    assert (home / "landing" / "credit_risk" / "März batch.csv").is_file() and not moved.exists()
    assert json.loads(_aimass(home, "quarantine", "list", "--json").stdout) == []
    [event] = [
        e
        for e in audit.read(Lake(str(home / "lake")), "credit_risk")
        if e["action"] == audit.QUARANTINE_RETRY
    ]
    assert event["evidence"]["file"] == "März batch.csv" and event["who"] == getpass.getuser()

    again = _aimass(home, "quarantine", "retry", "credit_risk", "März batch.csv")
    assert again.returncode != 0 and "no quarantined file" in again.stderr
    assert "unknown use case" in _aimass(home, "quarantine", "retry", "nope", "x.csv").stderr


def test_ingest_quarantines_a_bad_file_and_says_why(tmp_path: Path) -> None:
    home = tmp_path / "home"
    landing = home / "landing" / "credit_risk"
    landing.mkdir(parents=True)
    (landing / "semi.csv").write_text("application_id;Status\n1;good\n")

    first = _aimass(home, "ingest", "--use-case", "credit_risk", "--settle-s", "0", "--log-level", "ERROR")
    assert first.returncode == 1
    assert "collection.all_quarantined" in first.stderr and "[columns.missing]" in first.stdout
    assert list(landing.iterdir()) == []
    [reason] = (home / "quarantine" / "credit_risk").glob("*-semi.csv.json")
    assert json.loads(reason.read_text())["rule"] == "columns.missing"

    second = _aimass(home, "ingest", "--use-case", "credit_risk", "--settle-s", "0")
    assert second.returncode == 0 and "nothing new" in second.stdout
