"""Quarantine: landed files that break the contract leave the landing zone before the raw zone sees them.

A quarantined file sits at ``<quarantine_dir>/<utc timestamp>-<name>`` next to ``<same>.json`` holding
why; ``retry`` puts it back in the landing zone once an operator has fixed it (or the contract).
"""

from __future__ import annotations

import codecs
import json
import shutil
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

from aimass_pipeline.lib.contracts import Contract
from aimass_pipeline.lib.errors import DataContractError
from aimass_pipeline.lib.landing import as_csv_bytes, file_sha256
from aimass_pipeline.lib.preprocessing import clean_records, read_raw_batch

_CHUNK = 1 << 20
# Magic numbers of formats operators upload by mistake under a .csv name; NUL bytes catch the rest.
_BINARY_MAGIC = (b"\x89PNG", b"PK\x03\x04", b"%PDF", b"\xff\xd8\xff", b"GIF8", b"\x1f\x8b", b"PAR1")


def quarantine_dir_for(landing_root: Path, use_case: str) -> Path:
    """AIMASS_HOME/quarantine/<use case>, beside the landing root AIMASS_HOME/landing."""
    return Path(landing_root).parent / "quarantine" / use_case


def unsafe_name_reason(name: str) -> str | None:
    """Why a file name must not travel into the lake and on into paths and shell commands, or None."""
    if not name or name in (".", ".."):
        return "the name is empty"
    if ".." in name:
        return "the name contains '..'"
    if "/" in name or "\\" in name:
        return "the name contains a path separator"
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        return "the name contains control characters"
    if name.startswith("-"):
        return "the name starts with '-'"
    return None


def check_name(path: Path) -> None:
    """Raise DataContractError for a landed file whose name must not travel into the lake."""
    # A caller handing over landing/../x.csv has a traversal even though Path.name looks harmless.
    reason = unsafe_name_reason(path.name) or ("the path contains '..'" if ".." in path.parts else None)
    if reason:
        raise DataContractError(reason, source=path.name or str(path), rule="name.unsafe")


def _check_bytes(path: Path) -> None:
    """One streamed pass: binary content and bytes that are not UTF-8, before pandas guesses at them."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            if (offset == 0 and chunk.startswith(_BINARY_MAGIC)) or b"\x00" in chunk:
                raise DataContractError(
                    "binary content, not a CSV text file", source=path.name, rule="file.binary"
                )
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise DataContractError(
                    f"not UTF-8 text: byte {chunk[exc.start]:#04x} at offset {offset + exc.start}",
                    source=path.name,
                    rule="file.encoding",
                ) from exc
            offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise DataContractError(
            "not UTF-8 text: the file ends inside a character", source=path.name, rule="file.encoding"
        ) from exc


def precheck(path: Path, contract: Contract) -> None:
    """Raise DataContractError if the landed file at ``path`` must not enter the raw zone."""
    check_name(path)
    # Parquet is binary by design; its reader validates it instead.
    if path.suffix.lower() != ".parquet":
        _check_bytes(path)
    # The same conversion and parser the raw asset uses, so a file that passes here reads there too.
    data = as_csv_bytes(path.name, path.read_bytes())
    frame = read_raw_batch(data, path.name, "precheck", contract)
    if frame.empty:
        raise DataContractError("a header but no rows", source=path.name, rule="file.header_only")
    # Types, categories and targets now, while one file's fault only holds back that file.
    clean_records(frame, contract)


def _now() -> datetime:
    return datetime.now(UTC)


def _stored_name(name: str) -> str:
    # Keep the name recognisable but unable to escape the quarantine folder or pose as an option.
    safe = "".join("_" if unicodedata.category(ch) == "Cc" or ch in "/\\" else ch for ch in name)
    return safe.replace("..", "__") or "unnamed"


def quarantine(path: Path, error: DataContractError, quarantine_dir: Path) -> Path:
    """Move ``path`` into ``quarantine_dir`` with a JSON reason file beside it; returns the new path."""
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    now = _now()
    target = quarantine_dir / f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{_stored_name(path.name)}"
    sha256 = file_sha256(path)
    reason = {
        "file": path.name,
        "sha256": sha256,
        "rule": error.rule,
        "message": str(error),
        "column": error.column,
        "rows": error.rows[:100],
        "quarantined_at": now.isoformat(),
    }
    # The reason first: a crash in between leaves a reason without a file, never a file without one.
    reason_path = target.with_name(target.name + ".json")
    reason_path.write_text(json.dumps(reason, indent=2, ensure_ascii=False))
    shutil.move(str(path), target)
    return target


def list_quarantined(quarantine_dir: Path) -> list[dict]:
    """Every quarantined file, oldest first: its reason plus ``quarantined_file``, the name to retry."""
    if not quarantine_dir.is_dir():
        return []
    entries = []
    for reason_path in sorted(quarantine_dir.glob("*.json")):
        stored = reason_path.with_suffix("")
        if not stored.is_file():
            continue
        entries.append({**json.loads(reason_path.read_text()), "quarantined_file": stored.name})
    return entries


def retry(quarantine_dir: Path, name: str, landing_dir: Path) -> Path:
    """Move a quarantined file (by its quarantined or original name; the newest wins) back to landing."""
    matches = [e for e in list_quarantined(quarantine_dir) if name in (e["quarantined_file"], e["file"])]
    if not matches:
        raise FileNotFoundError(f"no quarantined file {name!r} in {quarantine_dir}")
    entry = matches[-1]
    original = entry["file"]
    if unsafe_name_reason(original):
        raise ValueError(f"{original!r} cannot go back under its name: {unsafe_name_reason(original)}")
    target = landing_dir / original
    if target.exists():
        raise FileExistsError(f"{target} exists; move it away first")
    landing_dir.mkdir(parents=True, exist_ok=True)
    stored = quarantine_dir / entry["quarantined_file"]
    # A dot-name while moving: the sensor treats dot-files as uploads in progress.
    partial = landing_dir / f".{original}.retry"
    shutil.move(str(stored), partial)
    partial.rename(target)
    stored.with_name(stored.name + ".json").unlink()
    return target
