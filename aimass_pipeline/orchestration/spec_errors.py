"""A use case whose spec cannot be used, as the Dagster UI shows it: one asset ``<use case>/spec`` in the
group ``<use case>``, its description and metadata the error (file and field), failing when materialised.
Every other use case loads, runs and serves as usual."""

from dagster import AssetsDefinition, Failure, MetadataValue, asset

from aimass_pipeline.core.specs import SpecError

SPEC_ASSET = "spec"


def build_spec_error_asset(use_case: str, error: SpecError) -> AssetsDefinition:
    message = str(error)

    @asset(
        name=SPEC_ASSET,
        key_prefix=[use_case],
        group_name=use_case,
        description=f"BROKEN SPEC: the use case {use_case!r} is not loaded. {message}",
        metadata={"spec_error": MetadataValue.text(message)},
    )
    def _spec() -> None:
        raise Failure(
            description=f"use case {use_case!r} is not loaded: {message}",
            metadata={"spec_error": MetadataValue.text(message)},
        )

    return _spec
