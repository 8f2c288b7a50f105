"""A new use case whose categories and classes are declared exactly as its data writes them, with capitals
(``Travel_Rarely``, ``Yes``): it lands, cleans, trains, and the served endpoint answers the records it was
trained on, in every spelling the contract's category rule accepts, with the same scores."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from aimass_pipeline.core.lake import Lake
from aimass_pipeline.settings import load_settings
from aimass_pipeline_tests.bento_server import bento_server
from aimass_pipeline_tests.conftest import AIMASS, ROOT, env_for

USE_CASE = "staff_attrition"
SPEC = f"""
name: {USE_CASE}
description: Staff records; predict who leaves.
domain: human resources
task: binary
metric: roc_auc
data:
  entity: employees
  key: EmployeeNumber
  target: Attrition
  classes: ["No", "Yes"]
  columns:
    - {{name: Age, kind: int, nullable: false, min: 18, max: 70}}
    - {{name: MonthlyIncome, kind: float, min: 0, max: 50000}}
    - {{name: BusinessTravel, kind: category, nullable: false,
       categories: [Non-Travel, Travel_Rarely, Travel_Frequently]}}
    - {{name: OverTime, kind: category, categories: ["No", "Yes"]}}
families:
  logreg:
    params: {{C: 1.0}}
ensemble: false
tuning: {{trials: 0, timeout_s: 30, cv_folds: 3}}
gate: {{floor: 0.6, min_holdout_rows: 40}}
compression: {{enabled: false}}
"""
FEATURES = ["Age", "MonthlyIncome", "BusinessTravel", "OverTime"]


def _staff(n: int = 500) -> pd.DataFrame:
    """Seeded staff records written as HR systems write them: ``Travel_Rarely``, ``Yes``."""
    rng = np.random.default_rng(11)
    travel = rng.choice(["Non-Travel", "Travel_Rarely", "Travel_Frequently"], n, p=[0.2, 0.6, 0.2])
    overtime = rng.choice(["No", "Yes"], n, p=[0.7, 0.3])
    age = rng.integers(18, 61, n)
    income = np.round(rng.lognormal(8.5, 0.5, n), 2)
    logit = -1.5 + 1.8 * (travel == "Travel_Frequently") + 1.5 * (overtime == "Yes") - 0.05 * (age - 35)
    leaves = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "EmployeeNumber": [f"E{i:05d}" for i in range(n)],
            "Age": age,
            "MonthlyIncome": income,
            "BusinessTravel": travel,
            "OverTime": overtime,
            "Attrition": np.where(leaves, "Yes", "No"),
        }
    )
    frame.loc[rng.choice(n, 25, replace=False), "OverTime"] = None
    return frame


def _records(frame: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in json.loads(frame[FEATURES].to_json(orient="records"))
    ]


def _respelled(records: list[dict], spell) -> list[dict]:
    return [
        {k: spell(v) if k in ("BusinessTravel", "OverTime") and v is not None else v for k, v in r.items()}
        for r in records
    ]


def test_categories_declared_with_capitals_train_and_serve_in_any_accepted_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / "specs").mkdir(parents=True)
    (home / "specs" / f"{USE_CASE}.yaml").write_text(SPEC)
    landing = home / "landing" / USE_CASE
    landing.mkdir(parents=True)
    staff = _staff()
    staff.to_csv(landing / "staff_2026_12.csv", index=False)

    result = subprocess.run(
        [AIMASS, "run", "--use-case", USE_CASE],
        env=env_for(home),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"[{USE_CASE}] registered version 1" in result.stdout, result.stdout[-3000:]

    # The home's own settings, whatever another test left in this process's environment.
    for key in set(os.environ) - set(env_for(home)):
        monkeypatch.delenv(key)
    settings = load_settings(home)
    clean = Lake(settings.lake_url).read_parquet("assets", USE_CASE, "clean_employees.parquet")
    # Stored as declared, whatever spelling landed.
    assert set(clean["BusinessTravel"]) == {"Non-Travel", "Travel_Rarely", "Travel_Frequently"}
    assert set(clean["Attrition"]) == {"No", "Yes"}

    records = _records(staff)
    env = settings.child_env() | {"AIMASS_PREDICTION_LOG": "off", "AIMASS_CHAMPION_POLL_S": "0"}
    with bento_server(settings, USE_CASE, home / "serve.log", env) as server:

        def predict(batch: list[dict]) -> requests.Response:
            return requests.post(f"{server.url}/predict", json={"records": batch}, timeout=120)

        as_trained = predict(records)
        assert as_trained.status_code == 200, as_trained.text[:2000]
        scores = [p["probability"] for p in as_trained.json()["predictions"]]
        assert {p["label"] for p in as_trained.json()["predictions"]} <= {"No", "Yes"}
        for spell in (str.lower, str.upper, lambda v: f"  {v.swapcase()}\t"):
            again = predict(_respelled(records, spell))
            assert again.status_code == 200, again.text[:2000]
            assert [p["probability"] for p in again.json()["predictions"]] == scores

        unknown = predict([records[0] | {"BusinessTravel": "Travel Rarely"}])
        assert unknown.status_code == 422, unknown.text
        assert ["records", 0, "BusinessTravel"] in [e["loc"] for e in unknown.json()["detail"]], unknown.text
