"""The monitoring wiring in the code location: jobs, schedule and sensor per use case, and the in-process
monitoring run the end-to-end loop uses, whose verdict the registered drift sensor turns into a retrain."""

from dagster import DagsterInstance, RunRequest

from aimass_pipeline.definitions import build_definitions
from aimass_pipeline.monitoring.jobs import monitoring_outputs, run_monitoring, tick_drift_sensor
from aimass_pipeline.settings import load_settings
from aimass_pipeline_tests.conftest import CREDIT_SPEC
from aimass_pipeline_tests.monitoring.traffic import SERVED, UC, serve, shift

MONITORING = {"served_predictions", "feature_drift", "prediction_drift", "live_performance"}


def _keys(defs, job: str) -> set[str]:
    return {
        key.path[-1]
        for key in defs.resolve_job_def(job).asset_layer.selected_asset_keys
        if key.path[0] == UC.name
    }


def test_monitoring_runs_on_its_schedule_and_the_drift_sensor_retrains(home) -> None:
    settings, unseen = home
    serve(settings, shift(unseen.iloc[:SERVED]), "1")
    defs = build_definitions(load_settings().use_case_specs())

    assert _keys(defs, "credit_risk_monitoring") == MONITORING
    assert not MONITORING & _keys(defs, "credit_risk_lifecycle")
    assert "champion_reference" in _keys(defs, "credit_risk_lifecycle") & _keys(defs, "credit_risk_retrain")
    schedule = defs.resolve_schedule_def("credit_risk_monitoring_schedule")
    assert (
        schedule.cron_schedule == CREDIT_SPEC.monitoring.cron
        and schedule.job_name == "credit_risk_monitoring"
    )

    with DagsterInstance.get() as instance:
        result = run_monitoring(UC, instance, defs)
        reports = monitoring_outputs(result, UC.name)
        assert reports["feature_drift"]["retrain_recommended"], reports["feature_drift"]["reason"]

        request, cursor = tick_drift_sensor(defs, UC.name, instance)
        again, _ = tick_drift_sensor(defs, UC.name, instance, cursor)

    assert defs.resolve_sensor_def("credit_risk_drift_sensor").job_name == "credit_risk_retrain"
    assert isinstance(request, RunRequest) and not isinstance(again, RunRequest)
    assert request.tags["aimass/drift_run_id"] == result.run_id
