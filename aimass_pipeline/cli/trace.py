"""`aimass trace PREDICTION_ID`: from a served prediction back to the data and code behind it."""

from __future__ import annotations

import argparse
import json
import sys

from aimass_pipeline.settings import load_settings

EXIT_UNKNOWN = 1
EXIT_INCOMPLETE = 2


def cmd_trace(args: argparse.Namespace) -> int:
    from aimass_pipeline.cli.stores import run_source
    from aimass_pipeline.core.lake import Lake
    from aimass_pipeline.core.lineage import UnknownPredictionError, trace_prediction

    settings = load_settings().prepare()
    try:
        lineage = trace_prediction(
            Lake(settings.lake_url, settings.storage_options),
            run_source(settings),
            args.prediction_id,
            tracking_uri=settings.mlflow_tracking_uri,
            mlflow_ui=args.mlflow_url,
            dagster_ui=args.dagster_url,
        )
    except UnknownPredictionError as exc:
        print(f"aimass trace: {exc}", file=sys.stderr)
        return EXIT_UNKNOWN
    if lineage.dagster_run_id:
        from aimass_pipeline.cli.stores import run_status

        lineage.dagster_run_status = run_status(settings, lineage.dagster_run_id)
        if lineage.dagster_run_status is None:
            lineage.problems.append(f"Dagster run {lineage.dagster_run_id} is not in the instance's history")
    if args.json:
        print(json.dumps(lineage.as_dict(), indent=2, sort_keys=True, default=str))
    else:
        _print_text(lineage)
    for problem in lineage.problems:
        print(f"aimass trace: lineage incomplete: {problem}", file=sys.stderr)
    return EXIT_INCOMPLETE if lineage.problems else 0


def _print_text(lineage) -> None:
    out = lineage.output
    print(f"prediction {lineage.prediction_id} ({lineage.use_case}) at {lineage.ts}")
    print(f"  inputs:  {json.dumps(lineage.inputs, sort_keys=True)}")
    print(f"  output:  label {out['label']!r}, probability {out['probability']:.6f}")
    print(f"  model:   {lineage.model_name} version {lineage.model_version} ({lineage.family or '?'})")
    print(f"  mlflow:  run {lineage.mlflow_run_id or '?'}  {lineage.mlflow_run_url or ''}")
    print(
        f"  dagster: run {lineage.dagster_run_id or '?'} ({lineage.dagster_run_status or 'not found'})  "
        f"{lineage.dagster_run_url or ''}"
    )
    print(f"  code:    {lineage.code_version or '?'}")
    print(f"  data:    {len(lineage.batches)} batch(es)")
    for batch in lineage.batches:
        for file in batch.files or [{"source_file": "?", "sha256": "?"}]:
            print(f"    - batch {batch.batch_id}: {file['source_file']} sha256 {file['sha256']}")
    print(f"  logged in {lineage.log_file}")
