"""Erase one data subject from every store of a use case, then prove it with a receipt.

The raw zone is searched by the subject key as landed (it holds the landed bytes, sealed); every store
downstream by the subject's pseudonym or by the entity keys of the rows found there. A champion trained on
the subject is flagged in the registry; the spec's ``pii.on_erasure`` says whether it must be retrained
(through the normal gate: the caller runs the lifecycle) or reviewed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from aimass_pipeline.core import audit
from aimass_pipeline.core.erasures import erased_subjects
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.pii import pseudonym
from aimass_pipeline.core.pseudonyms import pseudonym_key, raw_zone_key
from aimass_pipeline.core.specs import UseCaseSpec
from aimass_pipeline.privacy import stores
from aimass_pipeline.privacy.raw_zone import erase_raw
from aimass_pipeline.privacy.receipt import new_receipt_id, write_receipt
from aimass_pipeline.settings import Settings

ERASED_TAG = "privacy.erased_subject_receipt"
STATUS_TAG = "privacy.status"


class ErasureError(ValueError):
    """An erasure that cannot be made: no PII declared, or the subject already erased."""


@dataclass
class Erasure:
    receipt: dict
    receipt_uri: str
    retrain: bool  # the spec asks for a retrain and a champion was trained on the subject
    flagged: list[dict] = field(default_factory=list)

    @property
    def rows_removed(self) -> int:
        return sum(r["rows"] for r in self.receipt["removed"])


def _warehouse(settings: Settings, spec: UseCaseSpec, keys: set[str], alias: str) -> list[dict]:
    contract = spec.contract
    if settings.pg is not None:
        import psycopg2

        prefix = settings.pg.warehouse_schema
        with psycopg2.connect(
            host=settings.pg.host,
            port=settings.pg.port,
            user=settings.pg.user,
            password=settings.pg.password,
            dbname=settings.pg.warehouse_db,
        ) as conn:
            schemas = [f"{prefix}_{spec.name}", f"{prefix}_{spec.name}_lake"]
            return stores.warehouse(conn, "postgres", contract, keys, alias, schemas)
    if not settings.warehouse_path.exists():
        return []
    import duckdb

    with duckdb.connect(str(settings.warehouse_path)) as conn:
        return stores.warehouse(conn, "duckdb", contract, keys, alias, [spec.name, f"{spec.name}_lake"])


def _flag_champions(settings: Settings, spec: UseCaseSpec, receipt_id: str, policy: str) -> list[dict]:
    from aimass_pipeline.core.registry import champion_version, registry_client

    try:
        client = registry_client(settings.mlflow_tracking_uri)
        champion = champion_version(client, spec.name)
    except FileNotFoundError:  # no tracking store yet: nothing was ever trained
        return []
    if champion is None:
        return []
    status = "retrain_required" if policy == "retrain" else "review_required"
    client.set_model_version_tag(spec.name, champion.version, ERASED_TAG, receipt_id)
    client.set_model_version_tag(spec.name, champion.version, STATUS_TAG, status)
    return [{"model": spec.name, "version": str(champion.version), "status": status}]


def erase(
    settings: Settings, spec: UseCaseSpec, subject: str, *, reason: str = "", who: str | None = None
) -> Erasure:
    """Remove every row of ``subject`` (its subject key as landed) from every store of ``spec``'s use case."""
    contract = spec.contract
    if contract.pii is None:
        raise ErasureError(f"use case {spec.name!r} declares no PII (data.pii): it has no subjects to erase")
    subject = subject.strip()
    secret = settings.pii_key()
    alias = pseudonym(subject, pseudonym_key(secret))
    lake = Lake(settings.lake_url, settings.storage_options)
    earlier = erased_subjects(lake, spec.name).get(alias)
    if earlier is not None:
        raise ErasureError(f"that subject of {spec.name} was already erased: receipt {earlier}")
    now = dt.datetime.now(dt.UTC)
    receipt_id = new_receipt_id(now)
    raw = erase_raw(lake, contract, subject, raw_zone_key(secret), receipt_id)
    removed, predictions = stores.lake_tables(lake, contract, raw.entity_keys, alias, raw.rows)
    removed = raw.removed + removed + stores.labels(settings.labels_root, spec.name, predictions)
    removed += _warehouse(settings, spec, raw.entity_keys, alias)
    removed += stores.mlflow_examples(settings.mlflow_artifacts_uri, raw.rows, settings.signing_key())
    policy = contract.pii.on_erasure
    flagged = _flag_champions(settings, spec, receipt_id, policy) if raw.removed else []
    receipt, uri = write_receipt(
        lake,
        spec.name,
        {
            "receipt_id": receipt_id,
            "use_case": spec.name,
            "subject_pseudonym": alias,
            "erased_at": now.isoformat(timespec="seconds"),
            "reason": reason,
            "entity_keys": sorted(raw.entity_keys),
            "removed": removed,
            "champions_flagged": flagged,
            "policy": policy,
        },
    )
    audit.record(
        lake,
        action=audit.ERASE,
        use_case=spec.name,
        who=who,
        evidence={
            "receipt_id": receipt_id,
            "receipt": uri,
            "receipt_sha256": receipt["sha256"],
            "rows_removed": sum(r["rows"] for r in removed),
            "reason": reason,
        },
    )
    return Erasure(receipt, uri, retrain=policy == "retrain" and bool(flagged), flagged=flagged)
