"""Loop latency: a labelled file lands → the running endpoint answers with the new champion.

One fresh AIMass home, a fast binary use case (breast_cancer, logreg only, permissive gate); version 1 trained
and served (polling the registry every second); then a batch from a shifted population lands and is taken in
exactly as the landing sensor would (`aimass ingest --settle-s 0`), the lifecycle retrains, the gate promotes,
and the served endpoint swaps. Prints the phases. Under `aimass up` the sensor's tick interval (30 s) and the
settle window (10 s) come on top. Run: `python -m bench.loop_latency`.
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

from aimass_pipeline.collection.datasets import packaged_frame
from aimass_pipeline.core.specs import PACKAGED_SPECS, UseCaseSpec

UC = "loop_bench"
ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _spec() -> dict:
    spec = yaml.safe_load((PACKAGED_SPECS / "breast_cancer.yaml").read_text())
    spec.update(
        name=UC,
        families={"logreg": {"params": {"C": 1.0}, "trials": 0}},
        ensemble=False,
        compression={"enabled": False},
        gate={"floor": 0.8, "min_delta": 0.0, "alpha": 0.99},
    )
    return spec


def _wait(url: str, proc: subprocess.Popen, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bentoml serve exited with {proc.returncode}")
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit("server not ready")


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="aimass-loop-")) / "home"
    (home / "specs").mkdir(parents=True)
    raw = _spec()
    (home / "specs" / f"{UC}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    env = {**os.environ, "AIMASS_HOME": str(home)}
    subprocess.run([str(BIN / "aimass"), "run", "--use-case", UC], env=env, cwd=ROOT, check=True)

    from aimass_pipeline.cli.serve import serve_command
    from aimass_pipeline.settings import load_settings

    settings = load_settings(home).prepare()
    port = 4799
    url = f"http://127.0.0.1:{port}"
    serve_env = settings.child_env() | {"AIMASS_CHAMPION_POLL_S": "1"}
    server = subprocess.Popen(serve_command(settings, UC, port), env=serve_env, start_new_session=True)
    try:
        _wait(url, server)
        contract = UseCaseSpec.model_validate(raw).contract
        data = packaged_frame(raw["data"]["seed_source"], contract)
        shifted = data.copy()
        for column in contract.features:
            shifted[column.name] = (data[column.name].astype(float) * 1.6).clip(upper=column.max)
        shifted[contract.key] = "shifted-" + data[contract.key].astype(str)
        record = {c: float(data[c].iloc[0]) for c in contract.feature_names}

        landed_at = time.monotonic()
        partial = settings.landing_dir(UC) / f".{UC}_0002.csv.partial"
        shifted.to_csv(partial, index=False)
        partial.rename(settings.landing_dir(UC) / f"{UC}_0002.csv")
        subprocess.run(
            [str(BIN / "aimass"), "ingest", "--use-case", UC, "--settle-s", "0"],
            env=env,
            cwd=ROOT,
            check=True,
        )
        promoted_at = time.monotonic()
        while True:
            answer = requests.post(f"{url}/predict", json={"records": [record]}, timeout=10).json()
            if answer["model_version"] == "2":
                break
            if time.monotonic() - promoted_at > 60:
                raise SystemExit(f"still version {answer['model_version']} 60 s after the run")
            time.sleep(0.1)
        answered_at = time.monotonic()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print("\n| phase | seconds |\n|---|---|")
    print(f"| file landed → ingest + lifecycle run done (promoted) | {promoted_at - landed_at:.1f} |")
    print(f"| promoted → endpoint answers the new version (poll 1 s) | {answered_at - promoted_at:.1f} |")
    print(f"| **file landed → new champion answering** | **{answered_at - landed_at:.1f}** |")


if __name__ == "__main__":
    main()
