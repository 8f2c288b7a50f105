"""Quarantine: landed files that break the contract leave the landing zone before the raw zone sees them.

A quarantined file sits at ``<quarantine_dir>/<utc timestamp>-<name>`` next to ``<same>.json`` holding
why; ``retry`` puts it back in the landing zone once an operator has fixed it (or the contract), and
counts the retry in ``<quarantine_dir>/.retries.json`` (sha256 -> retries) so the sensor starts a new
run for bytes it has run before. The quarantine folder sits beside the landing root, on the same local
disk or S3 bucket (core.locations.quarantine_location).
"""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from aimass_pipeline.collection.ingestion.image_archive import RefusedMember
from aimass_pipeline.core.errors import DataContractError
from aimass_pipeline.core.locations import Location, locate

RETRIES = ".retries.json"


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


def check_name(path: Path | str) -> None:
    """Raise DataContractError for a landed file whose name must not travel into the lake."""
    parts = PurePosixPath(str(path)).parts
    name = parts[-1] if parts else ""
    # A caller handing over landing/../x.csv has a traversal even though the last part looks harmless.
    reason = unsafe_name_reason(name) or ("the path contains '..'" if ".." in parts else None)
    if reason:
        raise DataContractError(reason, source=name or str(path), rule="name.unsafe")


def _now() -> datetime:
    return datetime.now(UTC)


def _stored_name(name: str) -> str:
    # Keep the name recognisable but unable to escape the quarantine folder or pose as an option.
    safe = "".join("_" if unicodedata.category(ch) == "Cc" or ch in "/\\" else ch for ch in name)
    return safe.replace("..", "__") or "unnamed"


def quarantine(
    path: Location | Path | str, error: DataContractError, quarantine_dir: Location | Path | str
) -> Path | str:
    """Move the landed file into ``quarantine_dir`` with a JSON reason file beside it; returns where it
    went (a Path locally, a URL on S3). Landed file and quarantine share one filesystem."""
    source, jail = locate(path), locate(quarantine_dir)
    if source.fs.protocol != jail.fs.protocol:
        raise ValueError(f"{source} and the quarantine {jail} are not on the same filesystem")
    jail.makedirs()
    now = _now()
    target = jail.child(f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{_stored_name(source.name)}")
    reason = {
        "file": source.name,
        "sha256": source.sha256(),
        "rule": error.rule,
        "message": str(error),
        "column": error.column,
        "rows": error.rows[:100],
        "quarantined_at": now.isoformat(),
    }
    # The reason first: a crash in between leaves a reason without a file, never a file without one. On
    # S3 the move is a copy, then a delete: a crash between them leaves the file in both places, and the
    # next tick quarantines the landed copy again; nothing is lost.
    jail.child(target.name + ".json").write_bytes(json.dumps(reason, indent=2, ensure_ascii=False).encode())
    source.move_to(Location(source.fs, target.path))
    return target.native()


# An image refused alone inside an accepted archive is written here with its reason, like a whole file; the
# archive itself stays whole in the raw zone (its sha256 is the batch's lineage).
def quarantine_member(refused: RefusedMember, quarantine_dir: Location | Path | str) -> Path | str:
    """Write a refused image (or labels row) and its JSON reason into ``quarantine_dir``; returns where."""
    jail = locate(quarantine_dir)
    jail.makedirs()
    now = _now()
    name = (
        f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{_stored_name(refused.archive)}--{_stored_name(refused.member)}"
    )
    reason = {
        "file": f"{refused.archive}!{refused.member}",
        "archive": refused.archive,
        "member": refused.member,
        "sha256": refused.sha256,
        "rule": refused.rule,
        "message": refused.message,
        "column": None,
        "rows": [],
        "quarantined_at": now.isoformat(),
    }
    # The reason first, as for a whole file: a crash in between leaves a reason without bytes, never bytes
    # without a reason.
    jail.child(name + ".json").write_bytes(json.dumps(reason, indent=2, ensure_ascii=False).encode())
    jail.child(name).write_bytes(refused.data)
    return jail.child(name).native()


def list_quarantined(quarantine_dir: Location | Path | str) -> list[dict]:
    """Every quarantined file, oldest first: its reason plus ``quarantined_file``, the name to retry."""
    jail = locate(quarantine_dir)
    names = {e["name"] for e in jail.entries() if e["type"] == "file"}
    entries = []
    for reason_name in sorted(n for n in names if n.endswith(".json") and not n.startswith(".")):
        stored = reason_name[: -len(".json")]
        if stored not in names:
            continue
        reason = json.loads(jail.child(reason_name).read_bytes())
        entries.append({**reason, "quarantined_file": stored})
    return entries


def retry_counts(quarantine_dir: Location | Path | str) -> dict[str, int]:
    """sha256 -> how often a file with those bytes was put back into the landing zone."""
    record = locate(quarantine_dir).child(RETRIES)
    try:
        return json.loads(record.read_bytes())
    except FileNotFoundError:
        return {}


def retry(quarantine_dir: Location | Path | str, name: str, landing_dir: Location | Path | str) -> Path | str:
    """Move a quarantined file (by its quarantined or original name; the newest wins) back to landing."""
    jail, landing = locate(quarantine_dir), locate(landing_dir)
    matches = [e for e in list_quarantined(jail) if name in (e["quarantined_file"], e["file"])]
    if not matches:
        raise FileNotFoundError(f"no quarantined file {name!r} in {jail}")
    entry = matches[-1]
    if entry.get("member"):
        raise ValueError(
            f"{entry['file']} was refused inside its archive, whose other images were taken: fix it and "
            "land it in a new archive"
        )
    original = entry["file"]
    if unsafe_name_reason(original):
        raise ValueError(f"{original!r} cannot go back under its name: {unsafe_name_reason(original)}")
    target = landing.child(original)
    if target.exists():
        raise FileExistsError(f"{target} exists; move it away first")
    # Counted before the file moves: a crash in between over-counts (harmless), never under-counts, which
    # would let the sensor take the retried bytes under the run key of their failed run and skip them.
    counts = retry_counts(jail)
    counts[entry["sha256"]] = counts.get(entry["sha256"], 0) + 1
    jail.child(RETRIES).write_bytes(json.dumps(counts, indent=2, sort_keys=True).encode())
    landing.makedirs()
    stored = jail.child(entry["quarantined_file"])
    # A dot-name while moving: the sensor treats dot-files as uploads in progress.
    partial = landing.child(f".{original}.retry")
    stored.move_to(partial)
    partial.move_to(target)
    jail.child(entry["quarantined_file"] + ".json").remove()
    return target.native()
