"""One use case as the asset factories see it: its spec, contract, asset names and keys."""

from dataclasses import dataclass
from functools import cached_property

from dagster import AssetIn, AssetKey, DynamicPartitionsDefinition

from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.core.specs import UseCaseSpec
from aimass_pipeline.models.base import FeatureLayout

LABEL = "label"
# Monitoring assets watch the served model on their own schedule; a data batch must not run them.
MONITORING_GROUP = "monitoring"
# Shadow and canary reports: materialised by the canary sensor, never by a lifecycle run.
ROLLOUT_GROUP = "rollout"
# Every run of a use case carries it: the run queue's per-use-case limit and `aimass status` read it.
USE_CASE_TAG = "aimass/use_case"


@dataclass(frozen=True)
class UseCase:
    spec: UseCaseSpec

    @property
    def name(self) -> str:
        return self.spec.name

    @cached_property
    def contract(self) -> Contract:
        return self.spec.contract

    @property
    def raw(self) -> str:
        return f"raw_{self.spec.data.entity}"

    @property
    def raw_batch(self) -> str:
        """The collection asset partitioned by landed batch (one dynamic partition per batch)."""
        return f"raw_{self.spec.data.entity}_batch"

    @property
    def quarantine_check(self) -> str:
        """Fails (not blocking) when a landed file of the batch was quarantined."""
        return f"check_{self.raw_batch}_no_quarantine"

    @cached_property
    def batches(self) -> DynamicPartitionsDefinition:
        """One partition per landed batch, keyed by its batch id; the landing sensor adds them."""
        return DynamicPartitionsDefinition(name=f"{self.name}_batches")

    @property
    def clean(self) -> str:
        return f"clean_{self.spec.data.entity}"

    @property
    def model_table(self) -> str:
        return self.spec.data.model_table_name

    @property
    def families(self) -> list[str]:
        return list(self.spec.families)

    @property
    def candidates(self) -> list[str]:
        """Every candidate asset the evaluation compares: one per family, plus the ensemble of them."""
        names = [f"{family}_candidate" for family in self.families]
        return [*names, "ensemble_candidate"] if self.spec.ensemble and len(names) > 1 else names

    @cached_property
    def layout(self) -> FeatureLayout:
        image = self.spec.data.image
        return FeatureLayout(
            numeric=self.contract.numeric_features,
            categorical=self.contract.categorical_features,
            image_shape=tuple(image.shape) if image else None,
            derive_ratios=self.spec.data.derive_ratios,
            text=self.contract.text_features,
        )

    def key(self, name: str) -> AssetKey:
        return AssetKey([self.name, name])

    def ins(self, *names: str) -> dict[str, AssetIn]:
        """AssetIns for sibling assets (key_prefix does not apply to inputs); the model table of a dbt
        use case is read from the warehouse."""
        return {
            name: AssetIn(
                key=self.key(name),
                input_manager_key="warehouse_io"
                if name == self.model_table and self.spec.transformation == "dbt"
                else None,
            )
            for name in names
        }

    @property
    def op_prefix(self) -> str:
        return self.name

    @property
    def lifecycle_job(self) -> str:
        return f"{self.name}_lifecycle"

    @property
    def retrain_job(self) -> str:
        return f"{self.name}_retrain"

    @property
    def monitoring_job(self) -> str:
        return f"{self.name}_monitoring"
