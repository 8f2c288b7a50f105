"""The receipt of an erasure: what was found and removed, where, with the hashes of each store before and
after, the champions flagged; the subject named only by its pseudonym. Written once; its own sha256 proves
it was not edited after (``verify``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid

from aimass_pipeline.core.erasures import receipts_folder
from aimass_pipeline.core.lake import Lake


class ReceiptTampered(RuntimeError):
    """A receipt whose body no longer matches the hash written with it."""


def _digest(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def new_receipt_id(now: dt.datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"


def write_receipt(lake: Lake, use_case: str, body: dict) -> tuple[dict, str]:
    """Store the receipt under ``privacy/<use case>/receipts/``; returns it (with its sha256) and its URI."""
    receipt = {**body, "sha256": _digest(body)}
    parts = (*receipts_folder(use_case), f"{body['receipt_id']}.json")
    lake.write_bytes(json.dumps(receipt, indent=2, sort_keys=True).encode(), *parts)
    return receipt, lake.uri(*parts)


def verify(receipt: dict) -> None:
    body = {k: v for k, v in receipt.items() if k != "sha256"}
    if _digest(body) != receipt.get("sha256"):
        raise ReceiptTampered(f"erasure receipt {receipt.get('receipt_id')} was changed after it was written")
