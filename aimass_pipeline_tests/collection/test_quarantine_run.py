import json
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetCheckSeverity, DagsterInstance, materialize

from aimass_pipeline.cli.lifecycle import _set_aside
from aimass_pipeline.collection.assets import build_collection
from aimass_pipeline.collection.quarantine import list_quarantined
from aimass_pipeline.collection.sensors import landing_tick
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.orchestration.resources import LakeIOManager, LakeResource, LandingZoneResource
from aimass_pipeline.orchestration.use_case import UseCase
from aimass_pipeline.settings import Settings
from aimass_pipeline_tests.conftest import CREDIT_SPEC

CREDIT = UseCase(CREDIT_SPEC)
BATCH_NODE = "credit_risk__raw_applications_batch"
RAW_NODE = "credit_risk__raw_applications"


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


def _landing(settings: Settings) -> Path:
    folder = settings.landing_dir("credit_risk")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _tick(settings: Settings, cursor: str | None = None):
    return landing_tick(
        CREDIT,
        settings.landing_dir("credit_risk"),
        Lake(settings.lake_url),
        cursor,
        settle_s=0,
        max_batches=50,
    )


def _materialize(settings: Settings, instance: DagsterInstance, request, only_batch: bool = False):
    """One batch partition, as the sensor's run would: the batch asset, and the raw table over all batches."""
    instance.add_dynamic_partitions(CREDIT.batches.name, [request.partition_key])
    lake = LakeResource(url=settings.lake_url)
    return materialize(
        build_collection(CREDIT),
        instance=instance,
        partition_key=request.partition_key,
        run_config=request.run_config,
        selection=[CREDIT.key(CREDIT.raw_batch)] if only_batch else None,
        raise_on_error=False,
        resources={
            "landing": LandingZoneResource(root=str(settings.landing_root)),
            "lake": lake,
            "io_manager": LakeIOManager(lake=lake),
        },
    )


def _raw_zone(settings: Settings) -> dict[str, bytes]:
    root = Path(settings.lake_url) / "raw"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_bad_files_of_a_batch_go_to_quarantine_and_the_good_one_flows_on_in_the_same_run(
    aimass_home: Settings,
    credit_frame: pd.DataFrame,
    instance: DagsterInstance,
    capsys: pytest.CaptureFixture,
) -> None:
    landing = _landing(aimass_home)
    credit_frame.head(50).to_csv(landing / "good.csv", index=False)
    credit_frame.head(5).drop(columns=["Debt"]).to_csv(landing / "no_debt.csv", index=False)
    (landing / "photo.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    [request] = _tick(aimass_home).requests

    result = _materialize(aimass_home, instance, request)
    assert result.success
    assert sorted(p.name for p in landing.iterdir()) == ["good.csv"]
    jail = aimass_home.home / "quarantine" / "credit_risk"
    reasons = {e["file"]: e for e in list_quarantined(jail)}
    assert {f: e["rule"] for f, e in reasons.items()} == {
        "no_debt.csv": "columns.missing",
        "photo.csv": "file.binary",
    }
    assert reasons["no_debt.csv"]["column"] == "Debt" and len(reasons["photo.csv"]["sha256"]) == 64
    [stored] = Lake(aimass_home.lake_url).raw_batches("credit_risk")
    assert [m["source_file"] for m in stored["members"]] == ["good.csv"]

    [materialization] = result.asset_materializations_for_node(BATCH_NODE)
    assert materialization.metadata["dagster/row_count"].value == 50
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    check = checks["check_raw_applications_batch_no_quarantine"]
    assert not check.passed and check.severity == AssetCheckSeverity.ERROR
    assert checks["check_raw_applications_schema"].passed
    listed = check.metadata["quarantined"].value
    assert json.dumps(listed) and {q["rule"] for q in listed} == {"columns.missing", "file.binary"}
    # The failed check does not hold back the good file grouped with the bad ones: the raw table has it now.
    [raw] = result.asset_materializations_for_node(RAW_NODE)
    assert raw.metadata["dagster/row_count"].value == 50
    # `aimass ingest` and `aimass run` exit 1 for such a run, naming what was set aside.
    assert _set_aside(CREDIT, result)
    assert "photo.csv" in capsys.readouterr().err


def test_a_batch_whose_every_file_is_bad_fails_clearly_and_stores_nothing(
    aimass_home: Settings, instance: DagsterInstance
) -> None:
    (_landing(aimass_home) / "empty.csv").write_bytes(b"")
    [request] = _tick(aimass_home).requests
    result = _materialize(aimass_home, instance, request)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.cause.message
    assert "collection.all_quarantined" in message and "empty.csv" in message
    assert [e["rule"] for e in list_quarantined(aimass_home.home / "quarantine" / "credit_risk")] == [
        "file.empty"
    ]
    assert Lake(aimass_home.lake_url).raw_batches("credit_risk") == []


def test_json_lines_and_parquet_land_beside_csv(
    aimass_home: Settings, credit_frame: pd.DataFrame, instance: DagsterInstance
) -> None:
    landing = _landing(aimass_home)
    credit_frame.iloc[:10].to_csv(landing / "a.csv", index=False)
    records = credit_frame.iloc[10:20].to_dict(orient="records")
    for record in records:
        record["application"] = {"id": record.pop("application_id")}
    (landing / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    credit_frame.iloc[20:30].to_parquet(landing / "c.parquet", index=False)
    [request] = _tick(aimass_home).requests

    result = _materialize(aimass_home, instance, request)
    assert result.success
    table = result.output_for_node(RAW_NODE)
    assert len(table) == 30 and sorted(table["_source_file"].unique()) == ["a.csv", "b.jsonl", "c.parquet"]
    assert sorted(table["application_id"]) == sorted(credit_frame.iloc[:30]["application_id"].astype(str))
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {
        "check_raw_applications_batch_no_quarantine": True,
        "check_raw_applications_schema": True,
    }
    assert not _set_aside(CREDIT, result)


def test_a_file_replaced_after_the_tick_fails_the_run_stores_nothing_and_stays_for_the_next_tick(
    aimass_home: Settings, credit_frame: pd.DataFrame, instance: DagsterInstance
) -> None:
    path = _landing(aimass_home) / "moving.csv"
    credit_frame.head(40).to_csv(path, index=False)
    tick = _tick(aimass_home)
    [request] = tick.requests
    credit_frame.iloc[40:90].to_csv(path, index=False)

    result = _materialize(aimass_home, instance, request)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.cause.message
    assert "moving.csv changed after it was listed" in message and "Nothing was stored" in message
    assert path.is_file() and _raw_zone(aimass_home) == {}
    assert not (aimass_home.home / "quarantine").exists()

    [again] = _tick(aimass_home, tick.cursor).requests
    assert again.partition_key != request.partition_key
    assert _materialize(aimass_home, instance, again).success
    [stored] = Lake(aimass_home.lake_url).raw_batches("credit_risk")
    assert stored["batch_id"] == again.partition_key


def test_a_stored_batch_runs_again_idempotently_and_the_raw_table_unites_batches_in_order(
    aimass_home: Settings, credit_frame: pd.DataFrame, instance: DagsterInstance
) -> None:
    landing = _landing(aimass_home)
    credit_frame.iloc[:30].to_csv(landing / "first.csv", index=False)
    tick = _tick(aimass_home)
    [first] = tick.requests
    assert _materialize(aimass_home, instance, first).success
    before = _raw_zone(aimass_home)

    credit_frame.iloc[30:50].to_csv(landing / "second.csv", index=False)
    [second] = _tick(aimass_home, tick.cursor).requests
    once = _materialize(aimass_home, instance, second)
    assert once.success
    after_once = _raw_zone(aimass_home)
    assert {k: v for k, v in after_once.items() if k in before} == before

    twice = _materialize(aimass_home, instance, second)
    # A re-run from the UI carries no file list: the raw zone alone describes a stored batch.
    bare = _materialize(aimass_home, instance, type(second)(partition_key=second.partition_key))
    assert twice.success and bare.success and _raw_zone(aimass_home) == after_once
    pd.testing.assert_frame_equal(twice.output_for_node(BATCH_NODE), once.output_for_node(BATCH_NODE))
    pd.testing.assert_frame_equal(bare.output_for_node(BATCH_NODE), once.output_for_node(BATCH_NODE))

    # A registered batch that never stored anything (failed) does not hold back the others.
    instance.add_dynamic_partitions(CREDIT.batches.name, ["never_stored"])
    table = _materialize(aimass_home, instance, first).output_for_node(RAW_NODE)
    assert table["_source_file"].tolist() == ["first.csv"] * 30 + ["second.csv"] * 20
    assert table["application_id"].tolist() == credit_frame.iloc[:50]["application_id"].astype(str).tolist()


def test_a_file_grouped_again_after_a_lost_cursor_is_stored_once(
    aimass_home: Settings, credit_frame: pd.DataFrame, instance: DagsterInstance
) -> None:
    landing = _landing(aimass_home)
    credit_frame.iloc[:10].to_csv(landing / "a.csv", index=False)
    [alone] = _tick(aimass_home).requests
    credit_frame.iloc[10:20].to_csv(landing / "b.csv", index=False)
    # The run for a.csv is still queued when the sensor restarts without its cursor: a.csv joins b.csv.
    [together] = _tick(aimass_home).requests
    assert _materialize(aimass_home, instance, alone, only_batch=True).success
    result = _materialize(aimass_home, instance, together)
    assert result.success
    [materialization] = result.asset_materializations_for_node(BATCH_NODE)
    assert materialization.metadata["already_stored_elsewhere"].value == [
        f"a.csv (in batch {alone.partition_key})"
    ]
    assert len(result.output_for_node(RAW_NODE)) == 20


def test_a_few_bad_rows_go_to_the_rejects_table_and_the_rest_of_the_file_flows(
    aimass_home: Settings, credit_frame: pd.DataFrame, instance: DagsterInstance
) -> None:
    landing = _landing(aimass_home)
    rows = credit_frame.head(200).copy()
    rows["Age"] = rows["Age"].astype(object)
    rows.loc[rows.index[3], "Age"] = "old"  # editor line 5
    rows.loc[rows.index[10], "Age"] = 150  # line 12, above the contract's max of 100
    rows.to_csv(landing / "mostly_good.csv", index=False)
    [request] = _tick(aimass_home).requests

    result = _materialize(aimass_home, instance, request)
    assert result.success
    table = result.output_for_node(BATCH_NODE)
    assert len(table) == 198 and not ({"5", "12"} & set(table["_source_row"].astype(str)))
    rejects = Lake(aimass_home.lake_url).read_parquet(
        "rejects", "credit_risk", f"batch={request.partition_key}", "rejects.parquet"
    )
    assert sorted(zip(rejects["_source_row"], rejects["column"], rejects["rule"], strict=True)) == [
        (5, "Age", "type.numeric"),
        (12, "Age", "range.max"),
    ]
    batch = instance.get_latest_materialization_event(CREDIT.key(CREDIT.raw_batch)).asset_materialization
    assert batch.metadata["rows_rejected"].value == 2


def test_bad_rows_above_the_contracts_share_quarantine_the_whole_file(
    aimass_home: Settings, credit_frame: pd.DataFrame, instance: DagsterInstance
) -> None:
    landing = _landing(aimass_home)
    rows = credit_frame.head(100).copy()
    rows["Age"] = rows["Age"].astype(object)
    rows.loc[rows.index[:5], "Age"] = "old"  # 5 % > credit_risk's max_reject_share of 2 %
    rows.to_csv(landing / "too_many.csv", index=False)
    [request] = _tick(aimass_home).requests

    result = _materialize(aimass_home, instance, request)
    assert not result.success
    [entry] = list_quarantined(aimass_home.home / "quarantine" / "credit_risk")
    assert entry["file"] == "too_many.csv" and entry["rule"] == "rows.reject_share"
    assert not (Path(aimass_home.lake_url) / "raw").exists() or _raw_zone(aimass_home) == {}
    assert not (landing / "too_many.csv").exists()
