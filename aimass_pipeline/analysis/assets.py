"""Analysis: a profile of each landed batch and of the model-ready table over all batches, each with the
change since the previous one, plots and a markdown summary for the operator."""

import base64
import json

import pandas as pd
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from aimass_pipeline.analysis.profile_changes import changes_markdown, compare_profiles
from aimass_pipeline.analysis.profiling import (
    correlation_png,
    distribution_png,
    profile_json,
    profile_markdown,
    profile_table,
    typed_batch,
)
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.scan import AnyTable, frame_of, sample_metadata, value_counts
from aimass_pipeline.orchestration.resources import LakeResource
from aimass_pipeline.orchestration.use_case import LABEL, UseCase

PROFILE_FILE = "profile.json"


def _image(png: bytes, title: str) -> MetadataValue:
    return MetadataValue.md(f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})")


def _read_profile(lake: Lake, *parts: str) -> dict | None:
    return json.loads(lake.read_bytes(*parts)) if lake.exists(*parts) else None


def _report(
    lake: Lake, folder: tuple[str, ...], frame: pd.DataFrame, uc: UseCase, name: str, previous: dict | None
) -> dict:
    """Profile ``frame``, compare it with ``previous``, store profile and plots under ``folder`` in the lake;
    returns the metadata."""
    profile = profile_table(frame, uc.contract, LABEL, name=name, reference=previous)
    change = compare_profiles(previous, profile) if previous else None
    stored = profile_json(profile) | {"change": change}
    lake.write_bytes(json.dumps(stored, indent=1, default=str).encode(), *folder, PROFILE_FILE)
    distributions = distribution_png(frame, uc.contract, LABEL)
    correlations = correlation_png(frame, uc.contract)
    lake.write_bytes(distributions, *folder, "distributions.png")
    lake.write_bytes(correlations, *folder, "correlations.png")
    summary = profile_markdown(profile)
    if change:
        summary = changes_markdown(change) + "\n\n" + summary
    return {
        "dagster/row_count": profile["rows"],
        "missing_values": profile["missing_values"],
        "class_balance": MetadataValue.json(profile["class_balance"]),
        "top_correlated_pairs": MetadataValue.json(profile["top_correlated_pairs"]),
        "compared_with": change["previous"] if change else "nothing (first profile)",
        "max_feature_psi": change["max_psi"] if change and change["max_psi"] is not None else 0.0,
        "shifted_features": change["shifted_features"] if change else [],
        "change": MetadataValue.json(change or {}),
        "summary": MetadataValue.md(summary),
        "distributions": _image(distributions, "distributions"),
        "correlations": _image(correlations, "correlations"),
        "profile_path": MetadataValue.path(lake.uri(*folder, PROFILE_FILE)),
    }


def build_analysis(uc: UseCase) -> list:
    @asset(
        name=f"{uc.raw_batch}_profile",
        key_prefix=uc.name,
        ins={"batch": uc.ins(uc.raw_batch)[uc.raw_batch]},
        partitions_def=uc.batches,
        group_name="analysis",
        kinds={"pandas", "matplotlib"},
    )
    def batch_profile(
        context: AssetExecutionContext, batch: AnyTable, lake: LakeResource
    ) -> MaterializeResult:
        """The landed batch as it arrived (typed, nothing rejected), and how it differs from the batch that
        entered the raw zone before it."""
        store = lake.lake()
        batch_id = context.partition_key
        # Over training.max_rows rows the profile is of a seeded sample of that size (in the metadata).
        sample = frame_of(batch, uc.spec.training.max_rows, uc.spec.seed)
        frame, invalid = typed_batch(sample, uc.contract, LABEL)
        # Batches are registered as partitions in the order they landed.
        order = context.instance.get_dynamic_partitions(uc.batches.name)
        previous = _previous_batch_profile(store, uc, order[: order.index(batch_id)])
        metadata = _report(store, _batch_folder(uc, batch_id), frame, uc, batch_id, previous)
        metadata["invalid_values"] = MetadataValue.json(invalid)
        metadata.update(sample_metadata(batch, uc.spec.training.max_rows))
        return MaterializeResult(metadata=metadata)

    @asset(
        name=f"{uc.model_table}_profile",
        key_prefix=uc.name,
        ins={"table": uc.ins(uc.model_table)[uc.model_table]},
        group_name="analysis",
        kinds={"pandas", "matplotlib"},
    )
    def table_profile(context: AssetExecutionContext, table: AnyTable, lake: LakeResource) -> dict:
        """Counts, missingness, class balance, correlations and per-class distributions over all batches,
        and the change since the previous materialisation."""
        store = lake.lake()
        folder = ("reports", uc.name, uc.model_table)
        batches = sorted(str(b) for b in value_counts(table, "batch_id"))
        previous = _read_profile(store, *folder, PROFILE_FILE)
        sample = frame_of(table, uc.spec.training.max_rows, uc.spec.seed)
        metadata = _report(
            store, folder, sample, uc, f"{len(batches)} batches: {', '.join(batches[-5:])}", previous
        )
        metadata.update(sample_metadata(table, uc.spec.training.max_rows))
        context.add_output_metadata(metadata)
        return json.loads(store.read_bytes(*folder, PROFILE_FILE))

    return [batch_profile, table_profile]


def _batch_folder(uc: UseCase, batch_id: str) -> tuple[str, ...]:
    return ("reports", uc.name, "batches", batch_id)


def _previous_batch_profile(lake: Lake, uc: UseCase, earlier: list[str]) -> dict | None:
    """The profile of the latest earlier batch that has one (a quarantined batch was never profiled)."""
    for batch_id in reversed(earlier):
        profile = _read_profile(lake, *_batch_folder(uc, batch_id), PROFILE_FILE)
        if profile is not None:
            return profile
    return None
