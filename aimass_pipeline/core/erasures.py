"""Where erasure receipts live in the lake, and the erased subjects they name.

A receipt (``privacy/<use case>/receipts/<receipt id>.json``) is written once per erased subject by
``privacy.erasure``; it names the subject only by pseudonym. Collection reads the set of erased pseudonyms
so that a landed file carrying one of them again is quarantined, naming the receipt.
"""

from __future__ import annotations

import json

from aimass_pipeline.core.lake import Lake


def receipts_folder(use_case: str) -> tuple[str, ...]:
    return ("privacy", use_case, "receipts")


def receipts(lake: Lake, use_case: str) -> list[dict]:
    """Every receipt of the use case, oldest first."""
    folder = lake.path(*receipts_folder(use_case))
    try:
        names = sorted(lake.fs.ls(folder, detail=False, refresh=True))
    except FileNotFoundError:
        return []
    found = [json.loads(lake.fs.cat_file(n)) for n in names if n.endswith(".json")]
    return sorted(found, key=lambda r: (r["erased_at"], r["receipt_id"]))


def erased_subjects(lake: Lake, use_case: str) -> dict[str, str]:
    """Pseudonym of every erased subject -> the id of the receipt that erased it."""
    return {r["subject_pseudonym"]: r["receipt_id"] for r in receipts(lake, use_case)}
