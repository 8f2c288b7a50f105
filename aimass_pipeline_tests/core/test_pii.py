"""The PII transform (core.pii), the raw zone's seal (core.pseudonyms) and the key's rules (settings.pii)."""

import io
import os
import stat
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from aimass_pipeline.core.pii import PiiSpec, protect, pseudonym
from aimass_pipeline.core.pseudonyms import SealError, open_stream, pseudonym_key, raw_zone_key, seal_stream
from aimass_pipeline.core.specs import PACKAGED_SPECS
from aimass_pipeline.settings import SettingsError, load_settings

SPEC = PiiSpec.model_validate(
    {
        "subject_key": "patient_id",
        "columns": [
            {"name": "patient_id", "action": "pseudonymise"},
            {"name": "date_of_birth", "action": "generalise", "rule": "month"},
            {"name": "age", "action": "generalise", "rule": "band", "width": 5},
            {"name": "phone", "action": "drop"},
        ],
    }
)
KEY = pseudonym_key("one secret")


def _table() -> pa.Table:
    return pa.table(
        {
            "patient_id": ["MRN1", "MRN2", "MRN1", None],
            "date_of_birth": ["1961-07-23", "2001-01-31", "not a date", ""],
            "age": ["37", "40", "41.5", "x"],
            "phone": ["+44 20 7946 0000", None, "1", "2"],
        }
    )


def test_pseudonyms_are_keyed_stable_and_distinct() -> None:
    out, _ = protect(_table(), SPEC, KEY)
    ids = out["patient_id"].to_pylist()
    assert ids[0] == ids[2] == pseudonym("MRN1", KEY) and ids[0].startswith("ps_") and ids[1] != ids[0]
    assert ids[3] is None
    # Wrong key: another deployment's (or an attacker's) pseudonyms never match these.
    other, _ = protect(_table(), SPEC, pseudonym_key("another secret"))
    assert set(other["patient_id"].to_pylist()[:3]).isdisjoint(ids)
    # A pseudonym is an HMAC, not a hash: without the key it cannot be recomputed from the value.
    import hashlib

    assert hashlib.sha256(b"MRN1").hexdigest() not in ids[0]


def test_generalise_and_drop_and_unreadable_values_are_flagged() -> None:
    out, unreadable = protect(_table(), SPEC, KEY)
    assert out["date_of_birth"].to_pylist() == ["1961-07", "2001-01", None, None]
    assert out["age"].to_pylist() == ["35-40", "40-45", "40-45", None]
    assert out["phone"].to_pylist() == [None] * 4
    assert unreadable["date_of_birth"].to_pylist() == [False, False, True, False]
    assert unreadable["age"].to_pylist() == [False, False, False, True]


def test_a_pseudonymised_column_without_a_key_fails() -> None:
    with pytest.raises(ValueError, match="no PII key"):
        protect(_table(), SPEC, None)


def test_spec_rules() -> None:
    with pytest.raises(ValueError, match="subject_key"):
        PiiSpec.model_validate({"subject_key": "x", "columns": [{"name": "x", "action": "drop"}]})
    with pytest.raises(ValueError, match="needs a rule"):
        PiiSpec.model_validate({"subject_key": "x", "columns": [{"name": "x", "action": "generalise"}]})


def test_the_raw_zone_seal_opens_only_with_its_key_and_detects_cuts() -> None:
    plain = os.urandom(3 << 20) + b"tail"
    sealed = b"".join(seal_stream(io.BytesIO(plain), raw_zone_key("s")))
    assert plain[:1000] not in sealed
    assert b"".join(open_stream(io.BytesIO(sealed), raw_zone_key("s"))) == plain
    with pytest.raises(SealError, match="AIMASS_PII_KEY"):
        b"".join(open_stream(io.BytesIO(sealed), raw_zone_key("other")))
    with pytest.raises(SealError):  # the last piece cut off: the previous one was not sealed as last
        b"".join(open_stream(io.BytesIO(sealed[: -(1 << 10)][: len(sealed) // 2]), raw_zone_key("s")))
    # Keys for pseudonyms and for the raw zone are derived apart from the one secret.
    assert pseudonym_key("s") != raw_zone_key("s")


def test_local_key_is_generated_private_and_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIMASS_PII_KEY", raising=False)
    monkeypatch.delenv("AIMASS_ENV", raising=False)
    settings = load_settings(tmp_path)
    key = settings.pii_key()
    assert stat.S_IMODE((tmp_path / "pii.key").stat().st_mode) == 0o600
    assert load_settings(tmp_path).pii_key() == key
    monkeypatch.setenv("AIMASS_PII_KEY", "from the environment")
    assert load_settings(tmp_path).pii_key() == "from the environment"


def test_prod_without_a_key_refuses_to_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AIMASS_ENV": "prod",
        "AIMASS_PG_USER": "u",
        "AIMASS_PG_DAGSTER_DB": "d",
        "AIMASS_LAKE_URL": str(tmp_path / "lake"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AIMASS_PII_KEY", raising=False)
    with pytest.raises(SettingsError, match="breast_cancer.*AIMASS_PII_KEY is not set"):
        load_settings(tmp_path / "home").prepare()
    assert not (tmp_path / "home" / "pii.key").exists()
    # With no spec declaring PII the same deployment starts.
    specs = tmp_path / "home" / "specs"
    specs.mkdir(parents=True)
    plain = yaml.safe_load((PACKAGED_SPECS / "credit_risk.yaml").read_text())
    assert plain["data"].get("pii") is None
    monkeypatch.setenv("AIMASS_PII_KEY", "k")
    assert load_settings(tmp_path / "home").prepare().pii_key() == "k"
