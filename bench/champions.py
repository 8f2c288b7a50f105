"""The shipped use cases' champions for ``bench.serving --champions``: a soft-voting ensemble of every family
a spec lists, fitted on its packaged data with the spec's parameters (what the lifecycle's ensemble
candidate is; tuning is skipped), saved as an MLflow model, plus records to send and the spec for the bento.

Also the raw FastAPI reference serving the same model compiled the same way (``compiled_raw_app``).
"""

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

USE_CASES = ("credit_risk", "breast_cancer", "digits")
SEED = 7
SIGNING_KEY = "aimass-bench-signing-key"  # the service loads only signed models
# Short torch training: the bench measures serving, not accuracy.
TORCH_PARAMS = {"max_epochs": 5}


def _layout(contract: Any, spec: Any) -> Any:
    from aimass_pipeline.models import FeatureLayout

    image = spec.data.image
    return FeatureLayout(
        numeric=contract.numeric_features,
        categorical=contract.categorical_features,
        image_shape=tuple(image.shape) if image is not None else None,
        derive_ratios=bool(spec.data.derive_ratios),
    )


def build(use_case: str, work: Path) -> tuple[Path, pd.DataFrame, dict]:
    """(MLflow model path, request records frame, spec as JSON) of ``use_case``'s bench champion."""
    import mlflow.sklearn

    from aimass_pipeline.collection.datasets import packaged_frame
    from aimass_pipeline.core.specs import load_specs
    from aimass_pipeline.models import get_family
    from aimass_pipeline.models.ensemble import SoftVotingEnsemble

    spec = load_specs()[use_case]
    contract = spec.contract
    frame = packaged_frame(spec.data.seed_source, contract).sample(frac=1.0, random_state=SEED)
    frame = frame.dropna(subset=[contract.target]).reset_index(drop=True)
    X = frame[contract.feature_names].astype({c: object for c in contract.categorical_features})
    y = frame[contract.target].map({c: i for i, c in enumerate(contract.classes)}).to_numpy()
    n_train = int(0.7 * len(X))
    layout = _layout(contract, spec)
    members, names = [], []
    for name, family_spec in spec.families.items():
        params = dict(family_spec.params or {})
        if name.startswith("torch"):
            params.update(TORCH_PARAMS)
        family = get_family(name)
        members.append(
            family.build(layout, len(contract.classes), params, SEED).fit(X[:n_train], y[:n_train])
        )
        names.append(name)
    model = SoftVotingEnsemble(members=members, names=names).fit(X[:n_train], y[:n_train])
    path = work / f"{use_case}_model"
    mlflow.sklearn.save_model(model, path, serialization_format="cloudpickle", input_example=X.head(3))
    from aimass_pipeline.core.signing import sign_directory

    sign_directory(path, SIGNING_KEY)
    return path, X[n_train:].reset_index(drop=True), spec.model_dump(mode="json")


def compiled_raw_app() -> Any:
    """The reference for a champion: FastAPI + uvicorn, ``json.loads``, the compiled graph straight from
    the records. ``uvicorn --factory bench.champions:compiled_raw_app`` with BENCH_MODEL_PATH and
    BENCH_USE_CASE."""
    import mlflow.sklearn
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    from aimass_pipeline.core.specs import load_specs
    from aimass_pipeline.models.compile import CompiledModel
    from aimass_pipeline.serving.champion import single_threaded
    from aimass_pipeline.serving.compiled import fastest

    contract = load_specs()[os.environ["BENCH_USE_CASE"]].contract
    model = fastest(single_threaded(mlflow.sklearn.load_model(os.environ["BENCH_MODEL_PATH"])), contract)
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        records = json.loads(await request.body())["records"]
        if isinstance(model, CompiledModel):
            proba = model.predict_rows(records)
        else:
            proba = model.predict_proba(pd.DataFrame(records, columns=contract.feature_names))
        return JSONResponse({"predictions": [{"probability": float(p)} for p in np.max(proba, axis=1)]})

    @app.get("/readyz")
    async def readyz() -> dict:
        return {}

    return app


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready records: NaN -> None, whole floats of int columns as ints."""
    out = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    return [
        {k: (int(v) if isinstance(v, float) and v.is_integer() else v) for k, v in r.items()} for r in out
    ]


def _import(model_path: Path, tag: str, use_case: str, bentoml_home: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys, bentoml; bentoml.mlflow.import_model(sys.argv[1], sys.argv[2], metadata="
        "{'registered_model_name': sys.argv[3], 'model_version': '1', 'threshold': 0.5})"
    )
    env = {**os.environ, "BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "true"}
    subprocess.run([sys.executable, "-c", code, tag, str(model_path), use_case], env=env, check=True)


def _in_process(model_path: Path, use_case: str, frame: pd.DataFrame, repeats: int) -> dict[str, float]:
    import statistics
    import time

    import mlflow.sklearn

    from aimass_pipeline.core.specs import load_specs
    from aimass_pipeline.serving.champion import single_threaded
    from aimass_pipeline.serving.compiled import fastest

    contract = load_specs()[use_case].contract
    pipeline = single_threaded(mlflow.sklearn.load_model(str(model_path)))
    compiled = fastest(pipeline, contract)
    rows = records(frame.head(1000))
    body = json.dumps({"records": rows})

    def median_ms(fn: Any, n: int = repeats) -> float:
        fn()
        times = []
        for _ in range(n):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return 1000 * statistics.median(times)

    predict = compiled.predict_rows if hasattr(compiled, "predict_rows") else compiled.predict_proba
    batch_input = rows if hasattr(compiled, "predict_rows") else frame.head(1000)
    return {
        "compiled": float(hasattr(compiled, "predict_rows")),
        "pipeline_predict_1": median_ms(lambda: pipeline.predict_proba(frame.head(1)), 30),
        "predict_1": median_ms(
            lambda: predict(batch_input[:1] if isinstance(batch_input, list) else frame.head(1)), 200
        ),
        "predict_1000": median_ms(lambda: predict(batch_input)),
        "parse_1000": median_ms(lambda: json.loads(body)),
    }


def run(opts: Any, serving: Any) -> None:
    """Every shipped champion over HTTP: aimass (compiled), the raw compiled app, and (``--before``) aimass
    serving the pipeline uncompiled; ``serving`` is the bench.serving module (its load generator)."""
    import sys
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="aimass-bench-champions-"))
    bin_dir = Path(sys.executable).parent
    wanted = [u for u in (opts.use_cases.split(",") if opts.use_cases else USE_CASES)]
    table: list[tuple[str, str, dict]] = []
    for use_case in wanted:
        model_path, frame, spec = build(use_case, work)
        tag = f"{use_case}:bench"
        _import(model_path, tag, use_case, work / "bentoml")
        local = _in_process(model_path, use_case, frame, opts.batch_repeats)
        args_file = work / f"{use_case}_args.json"
        args_file.write_text(json.dumps({"use_case": use_case, "model_tag": tag, "spec": spec}))
        base_env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "BENTOML_DO_NOT_TRACK": "true",
            "DO_NOT_TRACK": "true",
            "PYTHONPATH": str(serving.ROOT),
        }
        port = serving.PORT_BASE
        aimass_cmd = [str(bin_dir / "bentoml"), "serve", serving.SERVICE, "--arg-file", str(args_file)]
        aimass_env = {
            **base_env,
            "BENTOML_HOME": str(work / "bentoml"),
            "AIMASS_HOME": str(work / "home"),
            "AIMASS_LAKE_URL": (work / "lake").as_uri(),
            "AIMASS_CHAMPION_POLL_S": "0",
            "AIMASS_SIGNING_KEY": SIGNING_KEY,
        }
        servers = {
            "raw": (
                [sys.executable, "-m", "uvicorn", "bench.champions:compiled_raw_app", "--factory"]
                + [
                    "--no-access-log",
                    "--log-level",
                    "warning",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port + 1),
                ],
                {**base_env, "BENCH_MODEL_PATH": str(model_path), "BENCH_USE_CASE": use_case},
                port + 1,
            ),
            "aimass": (aimass_cmd + ["--host", "127.0.0.1", "--port", str(port + 2)], aimass_env, port + 2),
        }
        if opts.before:
            servers["aimass-uncompiled"] = (
                aimass_cmd + ["--host", "127.0.0.1", "--port", str(port + 3)],
                {**aimass_env, "AIMASS_SERVE_COMPILED": "off"},
                port + 3,
            )
        bodies = [json.dumps({"records": [r]}).encode() for r in records(frame.head(256))]
        batch_body = json.dumps({"records": records(frame.head(1000))}).encode()
        requests = [serving._request("/predict", b) for b in bodies]
        results: dict[str, dict] = {}
        for name, (command, env, server_port) in servers.items():
            proc = serving._start(name, command, env, server_port, "/readyz", work / f"{use_case}-{name}.log")
            try:
                serving._phase(server_port, proc.pid, requests, 4, opts.warmup)
                results[name] = {
                    "c1": serving._phase(server_port, proc.pid, requests, 1, opts.duration),
                    "c32": serving._phase(server_port, proc.pid, requests, 32, opts.duration),
                    "batch_ms": serving._batch(
                        server_port, serving._request("/predict", batch_body), opts.batch_repeats
                    ),
                }
            finally:
                serving._stop(proc)
            print(f"{use_case} {name}: {json.dumps(results[name])}", file=sys.stderr, flush=True)
        table.append((use_case, json.dumps(local), results))
        _print(use_case, results, local)
    if not opts.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


def _print(use_case: str, results: dict[str, dict], local: dict[str, float]) -> None:
    raw = results.get("raw")
    print(
        f"\n## {use_case}: shipped champion (soft-voting ensemble of the spec's families), single-row requests\n"
    )
    print("| server | conc. | req/s | p50 ms | p99 ms | req/s vs raw | errors | server CPU ms/req |")
    print("|---|---|---|---|---|---|---|---|")
    for name, res in results.items():
        for conc in ("c1", "c32"):
            r = res[conc]
            ratio = f"{r['rps'] / raw[conc]['rps']:.2f}x" if raw else "-"
            print(
                f"| {name} | {conc[1:]} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {ratio} | "
                f"{r['errors']} | {r['server_cpu_ms']:.2f} |"
            )
    budget = local["predict_1000"] + local["parse_1000"]
    print("\n| server | 1,000-row request ms | vs in-process predict + parse |")
    print("|---|---|---|")
    for name, res in results.items():
        print(f"| {name} | {res['batch_ms']:.1f} | {res['batch_ms'] / budget:.2f}x |")
    print(
        f"\nIn process ({'compiled' if local['compiled'] else 'NOT compiled'}): 1 row {local['predict_1']:.2f} ms "
        f"(the pipeline: {local['pipeline_predict_1']:.2f} ms); 1,000 rows predict {local['predict_1000']:.1f} ms + "
        f"json.loads {local['parse_1000']:.1f} ms = {budget:.1f} ms."
    )
