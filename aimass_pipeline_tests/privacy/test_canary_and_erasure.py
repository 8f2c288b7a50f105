"""Issue 14 end to end on real parts: a recognisable patient (the canary) lands with the medical data, the
whole lifecycle runs (`aimass run`), then every store is scanned for the plaintext; `aimass erase` removes the
subject and retrains through the gate; every store is scanned again for the key and its pseudonym; the
subject landing again is refused (quarantined) with the receipt named.

One small lifecycle (logistic regression, no tuning) and its retrain: the scans are what is under test."""

import io
import json
import os
import subprocess
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from aimass_pipeline.collection.batch_table import validated_batch
from aimass_pipeline.collection.datasets import packaged_frame
from aimass_pipeline.collection.protection import opened_copy, protection
from aimass_pipeline.core import audit
from aimass_pipeline.core.erasures import receipts
from aimass_pipeline.core.errors import DataContractError
from aimass_pipeline.core.lake import Lake, members
from aimass_pipeline.core.pii import pseudonym
from aimass_pipeline.core.pseudonyms import pseudonym_key, raw_zone_key
from aimass_pipeline.core.specs import PACKAGED_SPECS, load_spec
from aimass_pipeline.settings import load_settings
from aimass_pipeline_tests.conftest import _ENV_KEYS, AIMASS, ROOT, env_for

UC = "pii_cancer"
CANARY = "CANARY-PATIENT-7731"
CANARY_BIRTH = "1961-07-23"


def _spec(home: Path) -> None:
    spec = yaml.safe_load((PACKAGED_SPECS / "breast_cancer.yaml").read_text())
    spec.update(
        name=UC,
        families={"logreg": {"params": {"C": 1.0}, "trials": 0}},
        ensemble=False,
        compression={"enabled": False},
        gate={"floor": 0.5, "min_delta": 0.0, "alpha": 0.99},
    )
    (home / "specs").mkdir(parents=True, exist_ok=True)
    (home / "specs" / f"{UC}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def _landed(contract, name: str, frame: pd.DataFrame, home: Path) -> None:
    folder = home / "landing" / UC
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / name, index=False)


def _texts(path: Path) -> list[bytes]:
    """The file's bytes, and for tables the decoded rows too (compression must not hide a value)."""
    data = path.read_bytes()
    out = [data]
    if path.suffix == ".parquet":
        out.append(pd.read_parquet(io.BytesIO(data)).to_csv().encode())
    elif path.suffix in (".duckdb", ".db") and data.startswith(b"DUCK", 8):
        with duckdb.connect(str(path), read_only=True) as conn:
            for schema, table in conn.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall():
                out.append(conn.execute(f'select * from "{schema}"."{table}"').df().to_csv().encode())
    return out


def _hits(home: Path, needles: list[str], skip: tuple[str, ...]) -> list[str]:
    """Every file under the home (lake, raw zone, warehouse, Dagster storage and event log, MLflow store and
    artifacts, logs) holding a needle, but the landing zone (the operator's own drop folder) and ``skip``."""
    found = []
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        relative = path.relative_to(home).as_posix()
        if relative.startswith(("landing/", *skip)) or path.name == "pii.key":
            continue
        for text in _texts(path):
            found += [f"{relative}: {n}" for n in needles if n.encode() in text]
    return sorted(set(found))


def _run(args: list[str], home: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [AIMASS, *args], env=env_for(home), cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def lived(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("pii") / "home"
    _spec(home)
    contract = load_spec(home / "specs" / f"{UC}.yaml").contract
    frame = packaged_frame("sklearn:breast_cancer", contract)
    frame.loc[0, ["patient_id", "date_of_birth"]] = [CANARY, CANARY_BIRTH]
    frame.loc[1, ["patient_id", "date_of_birth"]] = [CANARY, CANARY_BIRTH]  # two biopsies of one patient
    _landed(contract, f"{UC}_0001.csv", frame, home)
    result = _run(["run", "--use-case", UC], home)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return home


def _settings(home: Path, monkeypatch: pytest.MonkeyPatch):
    # A session fixture's Settings.prepare() may have exported another home's lake URL into this process.
    for key in _ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AIMASS_HOME", str(home))
    return load_settings()


def test_no_plaintext_pii_in_any_store_and_the_pseudonym_where_it_belongs(
    lived: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _hits(lived, [CANARY, CANARY_BIRTH], skip=()) == []
    settings = _settings(lived, monkeypatch)
    secret = settings.pii_key()
    alias = pseudonym(CANARY, pseudonym_key(secret))
    lake = Lake(settings.lake_url)
    [batch] = lake.raw_batches(UC)
    assert all(m["sealed"] == "aes-256-gcm" for m in members(batch))
    # The raw zone holds the landed bytes, sealed: only the key opens them.
    opened = opened_copy(
        lake,
        ("raw", UC, f"batch={batch['batch_id']}", members(batch)[0]["source_file"]),
        raw_zone_key(secret),
        lived.parent / "opened-check",
    )
    assert CANARY in opened.read_text()
    stored = pd.concat(
        pd.read_parquet(p) for p in (Path(settings.lake_url) / "assets" / UC).rglob("raw_*.parquet")
    )
    assert (stored["patient_id"] == alias).sum() == 2
    assert set(stored.loc[stored["patient_id"] == alias, "date_of_birth"]) == {"1961-07"}


def test_erasure_reaches_every_store_retrains_and_refuses_the_subject_again(
    lived: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(lived, monkeypatch)
    alias = pseudonym(CANARY, pseudonym_key(settings.pii_key()))
    # The retrain through the gate is one more lifecycle (~100 s): a drill, opt in with AIMASS_DRILLS=1.
    retrain = os.environ.get("AIMASS_DRILLS") == "1"
    erased = _run(
        ["erase", UC, CANARY, "--reason", "patient request", *([] if retrain else ["--no-retrain"])], lived
    )
    assert erased.returncode == 0, erased.stdout[-3000:] + erased.stderr[-3000:]
    lake = Lake(settings.lake_url)
    [receipt] = receipts(lake, UC)
    assert receipt["subject_pseudonym"] == alias and CANARY not in json.dumps(receipt)
    raw = [r for r in receipt["removed"] if r["store"] == "raw_zone"]
    assert raw and raw[0]["rows"] == 2 and raw[0]["sha256_before"] != raw[0]["sha256_after"]
    assert receipt["champions_flagged"] and receipt["champions_flagged"][0]["status"] == "retrain_required"
    [event] = [e for e in audit.read(lake, UC) if e["action"] == audit.ERASE]
    assert event["evidence"]["receipt_id"] == receipt["receipt_id"]
    assert ("retraining" in erased.stdout) == retrain
    assert (
        _hits(lived, [CANARY, CANARY_BIRTH, alias], skip=(f"lake/privacy/{UC}/", f"lake/audit/{UC}/")) == []
    )

    # The same patient lands again in a new file: quarantined, the receipt named.
    contract = load_spec(lived / "specs" / f"{UC}.yaml").contract
    again = packaged_frame("sklearn:breast_cancer", contract).head(20)
    again[contract.key] = [f"again{i}" for i in range(len(again))]
    again.loc[3, "patient_id"] = CANARY
    again.to_csv(lived.parent / f"{UC}_0002.csv", index=False)
    # Ingestion as the landing sensor's run calls it (a DataContractError moves the file to quarantine).
    monkeypatch.setenv("AIMASS_PII_KEY", settings.pii_key())
    with pytest.raises(DataContractError, match=receipt["receipt_id"]) as refused:
        validated_batch(
            str(lived.parent / f"{UC}_0002.csv"),
            "b2",
            contract,
            lived.parent,
            None,
            protection(lake, contract),
        )
    assert refused.value.rule == "privacy.erased_subject" and CANARY not in str(refused.value)
