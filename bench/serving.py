"""Serving speed: the AIMass BentoML endpoint against a minimal FastAPI app serving the same model in-process.

One seeded XGBoost model (200 trees, 30 synthetic float features) is served three ways on 127.0.0.1:

- ``raw``: FastAPI + uvicorn, ``json.loads`` the body, a DataFrame, ``predict_proba`` on the event loop;
- ``aimass``: ``bentoml serve aimass_pipeline.serving.service:ChampionService`` with the model imported into a
  temporary Bento store, a 30-column spec passed as bento arguments and the prediction log on (temp lake);
- ``mlflow``: ``mlflow models serve --env-manager local`` (skip with ``--skip-mlflow``).

Each is loaded for ``--duration`` seconds at concurrency 1 and 32 with single-row requests, then sent
``--batch-repeats`` 1,000-row requests one at a time. The load generator is one asyncio loop on persistent
keep-alive connections; its own CPU share is printed so a saturated generator shows (it stays at a few %).
Server CPU per request is the CPU time of the server's whole process tree divided by the requests answered:
on a shared machine it is the steadier number, since requests/s and latency also measure the neighbours.

    .venv/bin/python -m bench.serving [--duration 10] [--skip-mlflow] [--only raw,aimass]

``--champions`` measures the shipped use cases' champions instead (``bench.champions``): each served by
aimass (compiled into one ONNX graph) beside a raw FastAPI app serving the same compiled graph, and with
``--before`` by aimass serving the uncompiled pipeline too:

    .venv/bin/python -m bench.serving --champions [--before] [--use-cases credit_risk] [--duration 10]
"""

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parent.parent
N_FEATURES = 30
FEATURES = [f"f{i:02d}" for i in range(N_FEATURES)]
USE_CASE = "bench_serving"
MODEL_TAG = f"{USE_CASE}:v1"
SEED = 7
PORT_BASE = 4400  # --port-base; raw, aimass and mlflow listen on the next three ports
BATCH_ROWS = 1000
SERVICE = "aimass_pipeline.serving.service:ChampionService"


def raw_app() -> Any:  # a FastAPI app, imported lazily: only the uvicorn child needs FastAPI
    """The reference: what a hand-written endpoint costs. ``uvicorn --factory bench.serving:raw_app``."""
    import mlflow.sklearn
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    model = mlflow.sklearn.load_model(os.environ["BENCH_MODEL_PATH"])
    model.set_params(n_jobs=1)
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        records = json.loads(await request.body())["records"]
        proba = model.predict_proba(pd.DataFrame(records, columns=FEATURES))[:, 1]
        return JSONResponse({"predictions": [{"probability": float(p)} for p in proba]})

    @app.get("/readyz")
    async def readyz() -> dict:
        return {}

    return app


def _data(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=rows, n_features=N_FEATURES, n_informative=12, random_state=seed, flip_y=0.05
    )
    return pd.DataFrame(x.round(4), columns=FEATURES), y


def _train_and_save(work: Path) -> tuple[Path, pd.DataFrame]:
    import mlflow.sklearn
    from xgboost import XGBClassifier

    x, y = _data(5000, SEED)
    model = XGBClassifier(n_estimators=200, max_depth=6, random_state=SEED, n_jobs=1).fit(x, y)
    path = work / "mlflow_model"
    mlflow.sklearn.save_model(model, path, serialization_format="cloudpickle", input_example=x.head(5))
    return path, _data(3000, SEED + 1)[0]


def _spec() -> dict:
    from aimass_pipeline.core.specs import UseCaseSpec

    spec = {
        "name": USE_CASE,
        "description": "serving benchmark: 30 synthetic float features",
        "domain": "benchmark",
        "task": "binary",
        "metric": "roc_auc",
        "data": {
            "key": "id",
            "target": "y",
            "classes": ["no", "yes"],
            "columns": [{"name": f, "kind": "float", "nullable": False} for f in FEATURES],
        },
        "families": {"xgboost": {}},
        "gate": {"floor": 0.5},
    }
    return UseCaseSpec.model_validate(spec).model_dump(mode="json")


def _import_bento_model(model_path: Path, bentoml_home: Path) -> None:
    code = (
        "import sys, bentoml; bentoml.mlflow.import_model(sys.argv[1], sys.argv[2], metadata="
        "{'registered_model_name': sys.argv[3], 'model_version': '1', 'threshold': 0.5})"
    )
    env = {**os.environ, "BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "true"}
    subprocess.run([sys.executable, "-c", code, MODEL_TAG, str(model_path), USE_CASE], env=env, check=True)


def _start(
    name: str, command: list[str], env: dict[str, str], port: int, health: str, log: Path
) -> subprocess.Popen:
    handle = log.open("wb")
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}; log: {log}\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{health}", timeout=2) as resp:
                if resp.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    _stop(proc)
    raise RuntimeError(f"{name} did not answer {health} on port {port} within 120 s; log: {log}")


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its children (workers of bentoml/circus)."""
    total = 0.0
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def _request(path: str, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    return head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body


async def _roundtrip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:  # chunked
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(length)
    return status


async def _load(
    port: int, requests: list[bytes], concurrency: int, seconds: float
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = offset
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            status = await _roundtrip(reader, writer, requests[i % len(requests)])
            if status == 200:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1
            i += 1
        writer.close()

    await asyncio.gather(*(worker(k * 7919) for k in range(concurrency)))
    return latencies, errors


def _phase(port: int, pid: int, requests: list[bytes], concurrency: int, seconds: float) -> dict:
    cpu0, client0, wall0 = _tree_cpu(pid), time.process_time(), time.perf_counter()
    latencies, errors = asyncio.run(_load(port, requests, concurrency, seconds))
    wall = time.perf_counter() - wall0
    server_cpu, client_cpu = _tree_cpu(pid) - cpu0, time.process_time() - client0
    ms = sorted(1000 * v for v in latencies)
    return {
        "rps": len(ms) / wall,
        "p50": ms[len(ms) // 2] if ms else float("nan"),
        "p99": ms[min(len(ms) - 1, int(0.99 * len(ms)))] if ms else float("nan"),
        "errors": errors,
        "server_cpu_ms": 1000 * server_cpu / max(1, len(ms)),
        "client_cpu": client_cpu / wall,
    }


def _batch(port: int, request: bytes, repeats: int) -> float:
    async def run() -> list[float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        times = []
        for _ in range(repeats + 2):
            started = time.perf_counter()
            status = await _roundtrip(reader, writer, request)
            if status != 200:
                raise RuntimeError(f"1,000-row request answered {status}")
            times.append(time.perf_counter() - started)
        writer.close()
        return times[2:]

    return 1000 * statistics.median(asyncio.run(run()))


def _in_process(model_path: Path, frame: pd.DataFrame, repeats: int) -> dict[str, float]:
    import mlflow.sklearn

    model = mlflow.sklearn.load_model(str(model_path))
    model.set_params(n_jobs=1)
    batch = frame.head(BATCH_ROWS)
    body = json.dumps({"records": batch.to_dict(orient="records")})

    def median_ms(fn: Callable[[], object]) -> float:
        fn()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return 1000 * statistics.median(times)

    return {
        "predict_1": median_ms(lambda: model.predict_proba(frame.head(1))),
        "predict_1000": median_ms(lambda: model.predict_proba(batch)),
        "parse_1000": median_ms(lambda: pd.DataFrame(json.loads(body)["records"], columns=FEATURES)),
    }


def _servers(
    work: Path, model_path: Path, skip_mlflow: bool, service: str = SERVICE, service_dir: str | None = None
) -> dict[str, tuple[list[str], dict, int, str, str]]:
    bin_dir = Path(sys.executable).parent
    base_env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "BENTOML_DO_NOT_TRACK": "true",
        "DO_NOT_TRACK": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PYTHONPATH": str(ROOT),
        # `mlflow models serve` execs a bare `uvicorn`.
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    args_file = work / "bento_args.json"
    args_file.write_text(json.dumps({"use_case": USE_CASE, "model_tag": MODEL_TAG, "spec": _spec()}))
    servers = {
        "raw": (
            [sys.executable, "-m", "uvicorn", "bench.serving:raw_app", "--factory", "--no-access-log"]
            + ["--host", "127.0.0.1", "--port", str(PORT_BASE + 1), "--log-level", "warning"],
            {**base_env, "BENCH_MODEL_PATH": str(model_path)},
            PORT_BASE + 1,
            "/readyz",
            "/predict",
        ),
        "aimass": (
            [
                str(bin_dir / "bentoml"),
                "serve",
                service,
                *(["--working-dir", service_dir] if service_dir else []),
            ]
            + ["--arg-file", str(args_file), "--host", "127.0.0.1", "--port", str(PORT_BASE + 2)],
            {
                **base_env,
                "BENTOML_HOME": str(work / "bentoml"),
                "AIMASS_HOME": str(work / "home"),
                "AIMASS_LAKE_URL": (work / "lake").as_uri(),
            },
            PORT_BASE + 2,
            "/readyz",
            "/predict",
        ),
    }
    if not skip_mlflow:
        servers["mlflow"] = (
            [str(bin_dir / "mlflow"), "models", "serve", "-m", str(model_path), "--env-manager", "local"]
            + ["--host", "127.0.0.1", "--port", str(PORT_BASE + 3), "--workers", "1"],
            base_env,
            PORT_BASE + 3,
            "/ping",
            "/invocations",
        )
    return servers


def _bodies(name: str, frame: pd.DataFrame) -> tuple[list[bytes], bytes]:
    def body(rows: pd.DataFrame) -> bytes:
        records = rows.to_dict(orient="records")
        if name == "mlflow":
            return json.dumps({"dataframe_records": records}).encode()
        return json.dumps({"records": records}).encode()

    singles = [body(frame.iloc[[i]]) for i in range(256)]
    return singles, body(frame.head(BATCH_ROWS))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load phase")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--batch-repeats", type=int, default=15)
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated subset of raw,aimass,mlflow")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (server logs, lake)")
    parser.add_argument(
        "--service", default=SERVICE, help="what `bentoml serve` serves as aimass (e.g. a patched copy)"
    )
    parser.add_argument("--service-dir", default=None, help="--working-dir for --service")
    parser.add_argument("--port-base", type=int, default=4400)
    parser.add_argument(
        "--champions",
        action="store_true",
        help="the shipped use cases' champions instead of the XGBoost model",
    )
    parser.add_argument("--use-cases", default="", help="with --champions: a comma-separated subset")
    parser.add_argument("--before", action="store_true", help="with --champions: also aimass uncompiled")
    opts = parser.parse_args()
    global PORT_BASE  # noqa: PLW0603 -- the server table and the load phases read it
    PORT_BASE = opts.port_base
    if opts.champions:
        from bench import champions

        champions.run(opts, sys.modules[__name__])
        return

    work = Path(tempfile.mkdtemp(prefix="aimass-bench-serving-"))
    model_path, frame = _train_and_save(work)
    _import_bento_model(model_path, work / "bentoml")
    local = _in_process(model_path, frame, opts.batch_repeats)
    results: dict[str, dict] = {}
    wanted = set(filter(None, opts.only.split(",")))
    for name, (command, env, port, health, path) in _servers(
        work, model_path, opts.skip_mlflow, opts.service, opts.service_dir
    ).items():
        if wanted and name not in wanted:
            continue
        singles, batch_body = _bodies(name, frame)
        requests = [_request(path, b) for b in singles]
        proc = _start(name, command, env, port, health, work / f"{name}.log")
        try:
            _phase(port, proc.pid, requests, 4, opts.warmup)
            results[name] = {
                "c1": _phase(port, proc.pid, requests, 1, opts.duration),
                "c32": _phase(port, proc.pid, requests, 32, opts.duration),
                "batch_ms": _batch(port, _request(path, batch_body), opts.batch_repeats),
            }
        finally:
            _stop(proc)
        print(f"{name}: {json.dumps(results[name])}", file=sys.stderr, flush=True)
    _print_table(results, local)
    if not opts.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"\nwork directory kept: {work}")


def _print_table(results: dict[str, dict], local: dict[str, float]) -> None:
    raw = results.get("raw")
    print(
        f"\n## Serving: XGBoost 200 trees x {N_FEATURES} features, single-row requests ({os.cpu_count()} cores)\n"
    )
    print(
        "| server | conc. | req/s | p50 ms | p99 ms | req/s vs raw | p99 vs raw | errors | server CPU ms/req | client CPU |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, res in results.items():
        for conc in ("c1", "c32"):
            r = res[conc]
            rps_ratio = f"{r['rps'] / raw[conc]['rps']:.2f}x" if raw else "-"
            p99_ratio = f"{r['p99'] / raw[conc]['p99']:.2f}x" if raw else "-"
            print(
                f"| {name} | {conc[1:]} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {rps_ratio} | "
                f"{p99_ratio} | {r['errors']} | {r['server_cpu_ms']:.2f} | {100 * r['client_cpu']:.0f}% |"
            )
    budget = local["predict_1000"] + local["parse_1000"]
    print(f"\n## One {BATCH_ROWS}-row request (median)\n")
    print("| server | ms | vs in-process predict + parse |")
    print("|---|---|---|")
    for name, res in results.items():
        print(f"| {name} | {res['batch_ms']:.1f} | {res['batch_ms'] / budget:.2f}x |")
    print(
        f"\nIn process: predict 1 row {local['predict_1']:.2f} ms; {BATCH_ROWS} rows: predict "
        f"{local['predict_1000']:.1f} ms + JSON parse to a DataFrame {local['parse_1000']:.1f} ms = {budget:.1f} ms."
    )
    print(
        "Goal: req/s >= 0.8x raw, p99 <= 1.5x raw at concurrency 1 and 32; 1,000 rows <= 2x predict + parse."
    )


if __name__ == "__main__":
    main()
