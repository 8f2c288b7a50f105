import json

import pandas as pd
from dagster import AssetCheckSeverity, DagsterInstance, materialize

from aimass_pipeline.collection.assets import build_collection
from aimass_pipeline.lib.lake import Lake
from aimass_pipeline.lib.quarantine import list_quarantined
from aimass_pipeline.resources import LakeIOManager, LakeResource, LandingZoneResource
from aimass_pipeline.settings import Settings
from aimass_pipeline.use_case import UseCase
from aimass_pipeline_tests.conftest import CREDIT_SPEC

CREDIT = UseCase(CREDIT_SPEC)


def _materialize(settings: Settings, files: list[str] | None = None):
    lake = LakeResource(url=settings.lake_url)
    config = {"ops": {"credit_risk__raw_applications": {"config": {"files": files}}}} if files else None
    with DagsterInstance.ephemeral() as instance:
        return materialize(
            build_collection(CREDIT),
            instance=instance,
            run_config=config,
            raise_on_error=False,
            resources={
                "landing": LandingZoneResource(root=str(settings.landing_root)),
                "lake": lake,
                "io_manager": LakeIOManager(lake=lake),
            },
        )


def test_bad_files_go_to_quarantine_and_the_good_one_flows(
    aimass_home: Settings, credit_frame: pd.DataFrame
) -> None:
    landing = aimass_home.landing_dir("credit_risk")
    landing.mkdir(parents=True)
    credit_frame.head(50).to_csv(landing / "good.csv", index=False)
    credit_frame.head(5).drop(columns=["Debt"]).to_csv(landing / "no_debt.csv", index=False)
    (landing / "photo.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")

    result = _materialize(aimass_home)
    assert result.success
    assert sorted(p.name for p in landing.iterdir()) == ["good.csv"]
    jail = aimass_home.home / "quarantine" / "credit_risk"
    reasons = {e["file"]: e for e in list_quarantined(jail)}
    assert {f: e["rule"] for f, e in reasons.items()} == {
        "no_debt.csv": "columns.missing",
        "photo.csv": "file.binary",
    }
    assert reasons["no_debt.csv"]["column"] == "Debt" and len(reasons["photo.csv"]["sha256"]) == 64
    assert [m["source_file"] for m in Lake(aimass_home.lake_url).raw_batches("credit_risk")] == ["good.csv"]

    [materialization] = result.asset_materializations_for_node("credit_risk__raw_applications")
    reported = materialization.metadata["quarantined"].value
    assert sorted(q["file"] for q in reported) == ["no_debt.csv", "photo.csv"]
    assert materialization.metadata["dagster/row_count"].value == 50
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    quarantine_check = checks["check_raw_applications_no_quarantine"]
    assert not quarantine_check.passed and quarantine_check.severity == AssetCheckSeverity.WARN
    listed = quarantine_check.metadata["quarantined"].value
    assert json.dumps(listed) and {q["rule"] for q in listed} == {"columns.missing", "file.binary"}
    assert checks["check_raw_applications_schema"].passed

    # A later bad file leaves what is stored as it was, and the stored batch keeps flowing.
    before = Lake(aimass_home.lake_url).raw_batches("credit_risk")
    (landing / "late.csv").write_text("application_id\n1\n")
    again = _materialize(aimass_home)
    assert again.success and Lake(aimass_home.lake_url).raw_batches("credit_risk") == before
    assert len(list_quarantined(jail)) == 3


def test_a_clean_run_passes_the_quarantine_check(aimass_home: Settings, credit_frame: pd.DataFrame) -> None:
    landing = aimass_home.landing_dir("credit_risk")
    landing.mkdir(parents=True)
    credit_frame.head(30).to_csv(landing / "only.csv", index=False)
    result = _materialize(aimass_home, ["only.csv"])
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["check_raw_applications_no_quarantine"].passed
    assert not (aimass_home.home / "quarantine" / "credit_risk").exists()


def test_everything_quarantined_and_nothing_stored_fails_clearly(aimass_home: Settings) -> None:
    landing = aimass_home.landing_dir("credit_risk")
    landing.mkdir(parents=True)
    (landing / "empty.csv").write_bytes(b"")
    result = _materialize(aimass_home, ["empty.csv"])
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.cause.message
    assert "collection.all_quarantined" in message and "every selected file was quarantined" in message
    assert [e["rule"] for e in list_quarantined(aimass_home.home / "quarantine" / "credit_risk")] == [
        "file.empty"
    ]
    assert Lake(aimass_home.lake_url).raw_batches("credit_risk") == []


def test_json_lines_and_parquet_land_beside_csv(aimass_home: Settings, credit_frame: pd.DataFrame) -> None:
    landing = aimass_home.landing_dir("credit_risk")
    landing.mkdir(parents=True)
    credit_frame.iloc[:10].to_csv(landing / "a.csv", index=False)
    records = credit_frame.iloc[10:20].to_dict(orient="records")
    for record in records:
        record["application"] = {"id": record.pop("application_id")}
    (landing / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    credit_frame.iloc[20:30].to_parquet(landing / "c.parquet", index=False)
    (landing / "d.jsonl").write_text("not json\n")

    result = _materialize(aimass_home)
    assert result.success
    stored = [m["source_file"] for m in Lake(aimass_home.lake_url).raw_batches("credit_risk")]
    assert sorted(stored) == ["a.csv", "b.jsonl", "c.parquet"]
    table = result.output_for_node("credit_risk__raw_applications")
    assert len(table) == 30 and list(table["_source_file"].unique()) == stored
    expected = credit_frame.iloc[:30]["application_id"].astype(str).tolist()
    assert sorted(table["application_id"].tolist()) == sorted(expected)
    assert [e["file"] for e in list_quarantined(aimass_home.home / "quarantine" / "credit_risk")] == [
        "d.jsonl"
    ]
