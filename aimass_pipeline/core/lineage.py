"""Lineage of a served prediction: model version, MLflow run, Dagster run, data batches and code version.

The chain ``aimass trace`` follows: the prediction log row (``core.prediction_log``) names the model name and
version; the registry version names its MLflow run; the candidate run's tags name the Dagster run that
trained it (``dagster.run_id``), the raw batches it was trained on (``aimass.data_batches``) and the code
(``aimass.code_version``, from :func:`code_version`); each batch's raw-zone manifest names the landed file
and its sha256.
"""

from __future__ import annotations

import functools
import json
import subprocess
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, Protocol

import pyarrow.dataset as ds

from aimass_pipeline.core.lake import Lake, members
from aimass_pipeline.core.mlflow_names import CODE_VERSION_TAG, redacted, run_url
from aimass_pipeline.core.prediction_log import PREFIX

PACKAGE = "aimass-pipeline"
DAGSTER_RUN_TAG = "dagster.run_id"
DATA_BATCHES_TAG = "aimass.data_batches"
_CHECKOUT = Path(__file__).resolve().parents[2]


@functools.cache
def code_version() -> str:
    """``<commit>`` or ``<commit>-dirty`` when the package runs from a git checkout, else
    ``aimass-pipeline==<version>``; computed once per process (a git call costs ~10 ms)."""
    commit = _git("rev-parse", "HEAD")
    # A venv inside some other repository must not lend that repository's commit to an installed package.
    if commit and Path(_git("rev-parse", "--show-toplevel") or "/nonexistent").resolve() == _CHECKOUT:
        # Untracked files count: a new module changes what runs as much as an edited one.
        return f"{commit}-dirty" if _git("status", "--porcelain") else commit
    try:
        return f"{PACKAGE}=={package_version(PACKAGE)}"
    except PackageNotFoundError:
        return "unknown: not a git checkout and aimass-pipeline is not installed"


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(_CHECKOUT), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


class UnknownPredictionError(LookupError):
    """No prediction log in the lake holds the prediction id."""


class MissingVersionError(LookupError):
    """The registry holds no such model version."""


class RunSource(Protocol):
    """What a trace reads from the registry and tracking store: a version's run, a run's experiment and tags.
    ``MlflowRuns`` asks MLflow; the CLI reads the embedded SQLite store directly (cli/stores.py)."""

    def version_run(self, name: str, version: str) -> str | None:
        """The run id the version was registered from; MissingVersionError when there is no such version."""

    def run(self, run_id: str) -> tuple[str, dict[str, str]]:
        """(experiment id, tags) of the run."""


class MlflowRuns:
    def __init__(self, client: Any) -> None:
        self.client = client

    def version_run(self, name: str, version: str) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version(name, version).run_id or None
        except MlflowException as exc:
            raise MissingVersionError(exc.message) from exc

    def run(self, run_id: str) -> tuple[str, dict[str, str]]:
        run = self.client.get_run(run_id)
        return run.info.experiment_id, dict(run.data.tags)


@dataclass
class BatchLineage:
    batch_id: str
    manifest: str
    source_file: str | None = None
    sha256: str | None = None
    size: int | None = None
    data_path: str | None = None
    # Every landed file of the batch (grouped small files make one batch); the fields above are its first.
    files: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None


@dataclass
class PredictionLineage:
    prediction_id: str
    use_case: str
    ts: str
    inputs: dict[str, Any]
    output: dict[str, Any]
    model_name: str
    model_version: str
    log_file: str
    mlflow_run_id: str | None = None
    mlflow_run_url: str | None = None
    dagster_run_id: str | None = None
    dagster_run_url: str | None = None
    dagster_run_status: str | None = None
    code_version: str | None = None
    family: str | None = None
    batches: list[BatchLineage] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_prediction(lake: Lake, prediction_id: str) -> tuple[str, dict[str, Any], str]:
    """(use case, log row, file) of the prediction, found by a filtered scan of the Parquet log."""
    base = lake.path(PREFIX)
    if not lake.fs.exists(base):
        raise UnknownPredictionError(
            f"no prediction {prediction_id!r}: no prediction log at {lake.uri(PREFIX)}"
        )
    for use_case_dir in sorted(lake.fs.ls(base, detail=False)):
        use_case = use_case_dir.rstrip("/").rsplit("/", 1)[-1]
        # Dot-files are flushes still being written (prediction_log); pyarrow skips them by default.
        dataset = ds.dataset(use_case_dir, filesystem=lake.fs, format="parquet")
        # Streams record batches with the filter applied: memory stays one batch whatever the log's size.
        scanner = dataset.scanner(filter=ds.field("prediction_id") == prediction_id)
        for tagged in scanner.scan_batches():
            if tagged.record_batch.num_rows:
                row = tagged.record_batch.slice(0, 1).to_pylist()[0]
                return use_case, row, lake.fs.unstrip_protocol(tagged.fragment.path)
    raise UnknownPredictionError(
        f"no prediction {prediction_id!r} in the prediction log at {lake.uri(PREFIX)} "
        "(a server flushes every AIMASS_PREDICTION_FLUSH_S seconds: a prediction from the last few seconds "
        "may still be buffered)"
    )


def trace_prediction(
    lake: Lake,
    runs: RunSource,
    prediction_id: str,
    *,
    tracking_uri: str,
    mlflow_ui: str,
    dagster_ui: str,
) -> PredictionLineage:
    """Follow a prediction back to its model version, runs, data batches and code; what cannot be found
    is listed in ``problems`` rather than guessed."""
    use_case, row, log_file = find_prediction(lake, prediction_id)
    output = {"probability": row["probability"], "label": row["label"]}
    if row.get("probabilities"):
        output["probabilities"] = json.loads(row["probabilities"])
    lineage = PredictionLineage(
        prediction_id=prediction_id,
        use_case=use_case,
        ts=row["ts"].isoformat(),
        inputs=json.loads(row["inputs"]),
        output=output,
        model_name=row["model_name"],
        model_version=str(row["model_version"]),
        log_file=log_file,
    )
    try:
        run_id = runs.version_run(lineage.model_name, lineage.model_version)
    except MissingVersionError as exc:
        lineage.problems.append(
            f"registry at {redacted(tracking_uri)} has no version {lineage.model_version} of {lineage.model_name!r}: "
            f"{exc}"
        )
        return lineage
    if not run_id:
        lineage.problems.append(f"model version {lineage.model_version} names no MLflow run")
        return lineage
    experiment_id, tags = runs.run(run_id)
    lineage.mlflow_run_id = run_id
    lineage.mlflow_run_url = run_url(tracking_uri, experiment_id, run_id, mlflow_ui)
    lineage.family = tags.get("aimass.family")
    lineage.dagster_run_id = tags.get(DAGSTER_RUN_TAG)
    if lineage.dagster_run_id:
        lineage.dagster_run_url = f"{dagster_ui.rstrip('/')}/runs/{lineage.dagster_run_id}"
    else:
        lineage.problems.append(f"MLflow run {run_id} has no {DAGSTER_RUN_TAG} tag")
    lineage.code_version = tags.get(CODE_VERSION_TAG)
    if not lineage.code_version:
        lineage.problems.append(f"MLflow run {run_id} has no {CODE_VERSION_TAG} tag")
    batch_ids = [b for b in tags.get(DATA_BATCHES_TAG, "").split(",") if b]
    if not batch_ids:
        lineage.problems.append(f"MLflow run {run_id} has no {DATA_BATCHES_TAG} tag")
    lineage.batches = [_batch(lake, use_case, batch_id) for batch_id in batch_ids]
    lineage.problems += [f"batch {b.batch_id}: {b.problem}" for b in lineage.batches if b.problem]
    return lineage


def _batch(lake: Lake, use_case: str, batch_id: str) -> BatchLineage:
    parts = ("raw", use_case, f"batch={batch_id}", "manifest.json")
    batch = BatchLineage(batch_id=batch_id, manifest=lake.uri(*parts))
    if not lake.exists(*parts):
        batch.problem = f"no manifest at {batch.manifest}"
        return batch
    batch.files = members(json.loads(lake.read_bytes(*parts)))
    first = batch.files[0]
    batch.source_file, batch.sha256 = first["source_file"], first["sha256"]
    batch.size, batch.data_path = first.get("size"), first.get("data_path")
    return batch
