"""Rollout assets per use case: ``shadow_report`` (the shadow against what was served) and ``canary_decision``
(the sequential test's running statistic against its boundary, and the decision)."""

import base64

from dagster import AssetExecutionContext, MetadataValue, asset

from aimass_pipeline.core import rollout
from aimass_pipeline.orchestration.resources import LabelsZoneResource, LakeResource
from aimass_pipeline.orchestration.use_case import ROLLOUT_GROUP, UseCase
from aimass_pipeline.rollout.canary import boundary_png
from aimass_pipeline.rollout.decide import look
from aimass_pipeline.rollout.logs import SHADOW_PREFIX, read_log, read_outcomes
from aimass_pipeline.rollout.shadow import as_markdown, shadow_report


def _png(png: bytes) -> MetadataValue:
    return MetadataValue.md(f"![canary](data:image/png;base64,{base64.b64encode(png).decode()})")


def build_rollout(uc: UseCase) -> list:
    classes = list(uc.contract.classes)
    target = uc.contract.target

    @asset(name="canary_decision", key_prefix=uc.name, group_name=ROLLOUT_GROUP)
    def canary_decision(
        context: AssetExecutionContext, lake: LakeResource, labels: LabelsZoneResource
    ) -> dict:
        """The running canary's mSPRT statistic against its boundary and its guards; or the last decision."""
        store = lake.lake()
        looked = look(store, labels.location(uc.name), uc.name, target, classes)
        state = rollout.read_state(store, uc.name)
        running = state.running or {}
        metadata = {
            "canary_version": str(looked[0].version) if looked else "none",
            "action": str(running.get("action", "none")),
            "reason": str(running.get("reason", "no canary has run")),
            "log_lr": MetadataValue.float(float(running.get("log_lr", 0.0))),
            "boundary": MetadataValue.float(float(running.get("boundary", 0.0))),
            "p_value": MetadataValue.float(float(running.get("p_value", 1.0))),
            "labelled_canary": int(running.get("n_challenger", 0)),
            "labelled_champion": int(running.get("n_champion", 0)),
            "last_decision": MetadataValue.json(state.last_decision or {}),
            "guards": MetadataValue.json(running.get("guards", {})),
        }
        png = boundary_png(running)
        if png is not None:
            metadata["plot"] = _png(png)
            metadata["plot_png"] = MetadataValue.path(
                store.write_bytes(png, "reports", uc.name, "canary_decision.png")
            )
        context.add_output_metadata(metadata)
        return {"running": running, "last_decision": state.last_decision}

    @asset(name="shadow_report", key_prefix=uc.name, group_name=ROLLOUT_GROUP)
    def shadow_report_asset(
        context: AssetExecutionContext, lake: LakeResource, labels: LabelsZoneResource
    ) -> dict:
        """The running shadow against what clients got: agreement, score difference, live performance."""
        store = lake.lake()
        arm = rollout.read_state(store, uc.name).shadow
        if arm is None:
            context.add_output_metadata(
                {"shadow_version": "none", "report": MetadataValue.md("no shadow is running")}
            )
            return {"shadow_version": None}
        served = read_log(store.fs, store.root, uc.name, arm.started_at)
        served = served[served["role"] == "served"]
        shadow = read_log(store.fs, store.root, uc.name, arm.started_at, prefix=SHADOW_PREFIX)
        report = shadow_report(
            served,
            shadow,
            read_outcomes(labels.location(uc.name), target, classes),
            target,
            classes,
            arm.version,
        )
        context.add_output_metadata(
            {
                "shadow_version": arm.version,
                "pairs": report["pairs"],
                "agreement": MetadataValue.float(report["agreement"])
                if report["agreement"] is not None
                else MetadataValue.null(),
                "labelled_pairs": report["labelled_pairs"],
                "report": MetadataValue.md(as_markdown(report)),
            }
        )
        return report

    return [canary_decision, shadow_report_asset]
