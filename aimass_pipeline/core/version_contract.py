"""The contract a registered model version was trained under, carried by the version itself (a registry tag).

The served request schema and the gate's holdout come from the current spec, but a champion may have been
trained under an older one: a rollback or a hot swap across a contract change must check the version's own
contract (which columns, of which kind, which classes) before it scores anything. A version registered before
versions carried their contract has none; callers then assume the current spec's contract."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from aimass_pipeline.core.contracts import Column, Contract
from aimass_pipeline.core.pii import PiiSpec

# A model version tag (MLflow allows 100,000 characters there; digits' 64 columns take ~6,000).
CONTRACT_TAG = "aimass.contract"


def contract_tags(contract: Contract) -> dict[str, str]:
    """The tags that record ``contract`` on a model version at registration."""
    data = {**asdict(contract), "pii": contract.pii.model_dump() if contract.pii is not None else None}
    return {CONTRACT_TAG: json.dumps(data, sort_keys=True, separators=(",", ":"))}


def version_contract(tags: dict[str, str]) -> Contract | None:
    """The contract a version's tags record; None when the version carries none (registered before)."""
    text = tags.get(CONTRACT_TAG)
    if text is None:
        return None
    try:
        data: dict[str, Any] = json.loads(text)
        features = tuple(Column(**{**c, "categories": tuple(c["categories"])}) for c in data.pop("features"))
        pii = PiiSpec.model_validate(data.pop("pii")) if data.get("pii") else None
        return Contract(**{**data, "classes": tuple(data["classes"]), "features": features, "pii": pii})
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"model version tag {CONTRACT_TAG} is not a contract: {exc}") from exc


def incompatibilities(offered: Contract, needed: Contract) -> list[str]:
    """Why a model trained under ``needed`` cannot score what ``offered`` supplies (its rows or its requests):
    a column it needs that is not offered or is of another kind, or other classes. Empty when it can: an
    offered column the model does not use is simply not passed to it."""
    problems = []
    offered_columns = {c.name: c for c in offered.features}
    missing = [c.name for c in needed.features if c.name not in offered_columns]
    if missing:
        problems.append(f"needs columns {missing} that are not offered")
    for col in needed.features:
        have = offered_columns.get(col.name)
        if have is not None and (have.kind == "category") != (col.kind == "category"):
            problems.append(f"column {col.name!r} is {col.kind} for the model but {have.kind} offered")
    if tuple(offered.classes) != tuple(needed.classes):
        problems.append(f"classes {list(needed.classes)} differ from {list(offered.classes)}")
    return problems
