"""Free text at the door: a bad text file is refused with its own reason; a good one is stored NFC-normalised
and, for a column declared PII, scrubbed of contacts."""

import unicodedata
from pathlib import Path

import pandas as pd
import pytest

from aimass_pipeline.collection.ingestion.stream import ingest_file
from aimass_pipeline.core.errors import DataContractError
from aimass_pipeline.core.specs import PACKAGED_SPECS, load_spec

CONTRACT = load_spec(PACKAGED_SPECS / "health_breaches.yaml").contract
HEADER = "report_id,filer,report\n"


def _ingest(tmp_path: Path, name: str, body: bytes) -> pd.DataFrame:
    path = tmp_path / name
    path.write_bytes(HEADER.encode() + body)
    out = tmp_path / f"{name}.parquet"
    ingest_file(
        str(path), CONTRACT, batch_id="b1", out_path=str(out), rejects_path=str(tmp_path / "r.parquet")
    )
    return pd.read_parquet(out)


@pytest.mark.parametrize(
    ("body", "rule", "said"),
    [
        (b"r1,covered_entity,A laptop was stolen \xff\xfe from a car\n", "file.encoding", "not UTF-8"),
        (b'r1,covered_entity,""\nr2,covered_entity,"   "\n', "rows.reject_share", "[not_null]"),
        (b"r1,covered_entity," + b"word " * 2_000_000 + b"\n", "row.too_long", "longer than"),
        (b"r1,covered_entity," + b"word " * 5_000 + b"\n", "rows.reject_share", "[text.max_chars]"),
    ],
    ids=["invalid-utf8", "empty-text", "10MB-text", "25k-char-text"],
)
def test_a_bad_text_file_is_refused_with_its_reason(
    tmp_path: Path, body: bytes, rule: str, said: str
) -> None:
    with pytest.raises(DataContractError) as caught:
        _ingest(tmp_path, "bad.csv", body)
    assert caught.value.rule == rule
    assert said in str(caught.value)
    assert len(str(caught.value)) < 2_000  # the reason names a 10 MB text, it does not carry it


def test_good_text_is_stored_normalised_and_scrubbed(tmp_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", "Clinique Médicale")
    body = (
        f'r1,covered_entity,"{decomposed}. Call +1 555-123-4567 or write to jane.doe@example.org, MRN 12345678"\n'
        "r2,business_associate,A billing contractor's server was hacked\n"
    ).encode()
    stored = _ingest(tmp_path, "good.csv", body)
    first = stored.loc[stored.report_id == "r1", "report"].item()
    assert first.startswith("Clinique Médicale") and first == unicodedata.normalize("NFC", first)
    assert "<phone>" in first and "<email>" in first and "<number>" in first
    assert "555" not in first and "jane" not in first and "12345678" not in first
    assert stored.loc[stored.report_id == "r2", "report"].item() == "A billing contractor's server was hacked"
