"""Text rows per second featurised (TF-IDF or hashed n-grams, inside the model) and scored, in process and
over HTTP, with the health_breaches champion of an AIMass home (run `aimass run --use-case health_breaches`
first).

    AIMASS_HOME=<home> .venv/bin/python -m bench.text [--rows 2000] [--port 3917]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

USE_CASE = "health_breaches"


def _texts(rows: int) -> pd.DataFrame:
    from aimass_pipeline.collection.datasets import packaged_frame
    from aimass_pipeline.core.specs import PACKAGED_SPECS, load_spec

    spec = load_spec(PACKAGED_SPECS / f"{USE_CASE}.yaml")
    frame = packaged_frame(spec.data.seed_source, spec.contract)[spec.contract.feature_names]
    return pd.concat([frame] * (rows // len(frame) + 1), ignore_index=True).head(rows)


def _post(url: str, records: list[dict]) -> dict:
    body = json.dumps({"records": records}).encode()
    request = urllib.request.Request(url, body, {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.load(response)


def _wait(url: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {seconds} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--port", type=int, default=3917)
    args = parser.parse_args()
    import mlflow.sklearn

    from aimass_pipeline.settings import load_settings

    load_settings().prepare()
    model = mlflow.sklearn.load_model(f"models:/{USE_CASE}@champion")
    frame = _texts(args.rows)
    records = frame.to_dict("records")
    # What the service scores: the text as ingestion stores it (NFC, PII scrubbed), as its request model does.
    from aimass_pipeline.core.text_contract import normalise, scrub

    frame = frame.apply(lambda column: column.map(lambda text: scrub(normalise(text))))
    model.predict_proba(frame.head(10))  # warm-up
    start = time.perf_counter()
    local = model.predict_proba(frame)[:, 1]
    batch_s = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(200):
        model.predict_proba(frame.iloc[[i]])
    single_s = (time.perf_counter() - start) / 200
    print(f"in process: {args.rows / batch_s:,.0f} rows/s in one batch; one row {single_s * 1e3:.2f} ms")

    log = Path(os.environ.get("AIMASS_HOME", ".aimass")) / "logs" / "bench-text-serve.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    aimass = str(Path(sys.executable).with_name("aimass"))
    env = os.environ | {"AIMASS_PREDICTION_LOG": "off", "AIMASS_CHAMPION_POLL_S": "0"}
    with log.open("w") as out:
        server = subprocess.Popen(
            [aimass, "serve", USE_CASE, "--port", str(args.port)], stdout=out, stderr=out, env=env
        )
    try:
        url = f"http://127.0.0.1:{args.port}"
        _wait(f"{url}/readyz")
        _post(f"{url}/predict", records[:10])
        start = time.perf_counter()
        served = []
        for chunk in range(0, len(records), 500):
            served += [
                p["probability"] for p in _post(f"{url}/predict", records[chunk : chunk + 500])["predictions"]
            ]
        http_s = time.perf_counter() - start
        start = time.perf_counter()
        for record in records[:200]:
            _post(f"{url}/predict", [record])
        one_s = (time.perf_counter() - start) / 200
        gap = float(np.abs(np.asarray(served) - local).max())
        print(f"over HTTP: {args.rows / http_s:,.0f} rows/s in requests of 500; one row {one_s * 1e3:.2f} ms")
        print(f"largest |served - in process| over {args.rows} rows: {gap:.2e}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
