"""Optimisation: an optuna study per model family; its best parameters are an asset the final fit consumes."""

import mlflow as mlflow_api
import pandas as pd
from dagster import AssetExecutionContext, Config, MetadataValue, asset

from aimass_pipeline.core.registry import ensure_experiment, run_url
from aimass_pipeline.models import get_family
from aimass_pipeline.optimisation.studies import StudyStore
from aimass_pipeline.optimisation.tuning import TrialOutcome, tune
from aimass_pipeline.orchestration.executor import TRAINING_OP_TAGS
from aimass_pipeline.orchestration.resources import MlflowResource
from aimass_pipeline.orchestration.use_case import LABEL, UseCase
from aimass_pipeline.settings.scale import load_scale_settings


class TuningBudget(Config):
    """Caps the spec's budget for this run (scripts and tests); the spec stays the default."""

    max_trials: int | None = None


def build_optimisation(uc: UseCase) -> list:
    return [_params_asset(uc, family) for family in uc.families]


def _params_asset(uc: UseCase, family_name: str):
    @asset(
        name=f"{family_name}_params",
        key_prefix=uc.name,
        ins={"training_set": uc.ins("training_set")["training_set"]},
        group_name="optimisation",
        kinds={"optuna", "mlflow"},
        op_tags=TRAINING_OP_TAGS,
    )
    def best_params(
        context: AssetExecutionContext,
        config: TuningBudget,
        training_set: pd.DataFrame,
        mlflow: MlflowResource,
    ) -> dict:
        """The spec's fixed parameters, overlaid with the best of a seeded optuna study within the budget."""
        family = get_family(family_name)
        fam_spec = uc.spec.families[family_name]
        trials, timeout_s = uc.spec.budget(family_name)
        if config.max_trials is not None:
            trials = min(trials, config.max_trials)
        fixed = {**family.default_params(uc.layout, len(uc.contract.classes)), **fam_spec.params}
        space = {name: p.model_dump(exclude_none=True) for name, p in fam_spec.search.items()}
        if trials == 0 or not space:
            context.add_output_metadata({"trials": 0, "params": MetadataValue.json(fixed)})
            return {"params": fixed, "cv_score": None, "trials": 0}
        scale = load_scale_settings()
        # Above one worker the study lives in the shared RDB, named by run and family so a step retry of the
        # same run resumes its queue instead of adding a budget.
        shared = (
            {
                "storage": StudyStore(scale.tuning_storage),
                "workers": scale.tuning_workers,
                "study_name": f"{uc.name}-{family_name}-{context.run_id}",
            }
            if scale.tuning_workers > 1 and scale.tuning_storage
            else {}
        )
        client = mlflow.client()
        experiment_id = ensure_experiment(client, uc.name, mlflow.artifact_root)
        X = training_set[uc.contract.feature_names]
        y = training_set[LABEL].to_numpy()
        with mlflow_api.start_run(
            experiment_id=experiment_id,
            run_name=f"tuning-{family_name}-{context.run_id[:8]}",
            tags={"aimass.use_case": uc.name, "aimass.family": family_name, "dagster.run_id": context.run_id},
        ) as parent:

            def record(outcome: TrialOutcome) -> None:
                with mlflow_api.start_run(
                    experiment_id=experiment_id, run_name=f"trial-{outcome.number}", nested=True
                ):
                    mlflow_api.log_params(outcome.params)
                    mlflow_api.set_tag("optuna.state", outcome.state)
                    if outcome.score is not None:
                        mlflow_api.log_metric(f"cv_{uc.spec.metric}", outcome.score)

            result = tune(
                family,
                uc.layout,
                len(uc.contract.classes),
                X,
                y,
                space=space,
                metric=uc.spec.metric,
                n_trials=trials,
                timeout_s=timeout_s,
                seed=uc.spec.seed,
                cv_folds=uc.spec.tuning.cv_folds,
                on_trial=record,
                fixed=fixed,
                **shared,
            )
            mlflow_api.log_params({f"best_{k}": v for k, v in result.best_params.items()})
            mlflow_api.log_metrics(
                {
                    f"best_cv_{uc.spec.metric}": result.best_score,
                    "trials": len(result.trials),
                    "pruned": result.n_pruned,
                    "trials_per_minute": 60 * len(result.trials) / max(result.seconds, 1e-9),
                    "tuning_workers": shared.get("workers", 1),
                }
            )
        params = {**fixed, **result.best_params}
        context.add_output_metadata(
            {
                "trials": len(result.trials),
                "pruned": result.n_pruned,
                f"best_cv_{uc.spec.metric}": result.best_score,
                "seconds": round(result.seconds, 2),
                "params": MetadataValue.json(params),
                "mlflow_run": MetadataValue.url(
                    run_url(mlflow.tracking_uri, experiment_id, parent.info.run_id, mlflow.ui_url)
                ),
            }
        )
        return {"params": params, "cv_score": result.best_score, "trials": len(result.trials)}

    return best_params
