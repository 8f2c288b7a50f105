"""Adding a use case is a spec and files in its landing zone: no code."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from aimass_pipeline.core.specs import SpecError, load_specs
from aimass_pipeline.settings import load_settings
from aimass_pipeline_tests.conftest import AIMASS, ROOT, env_for

SPEC = """
name: wine_origin
description: Wine chemistry; predict the cultivar.
domain: food quality
task: multiclass
metric: accuracy
data:
  entity: wines
  key: wine_id
  target: cultivar
  classes: [barolo, grignolino, barbera]
  columns:
    - {name: alcohol, kind: float, nullable: false, min: 0, max: 20}
    - {name: malic_acid, kind: float, min: 0, max: 10}
    - {name: color_intensity, kind: float, nullable: false, min: 0, max: 20}
    - {name: proline, kind: float, nullable: false, min: 0, max: 5000}
    - {name: region, kind: category, categories: [north, south]}
families:
  logreg:
    params: {C: 1.0}
    search:
      C: {type: float, low: 0.05, high: 5.0, log: true}
tuning: {trials: 2, timeout_s: 30, cv_folds: 3}
gate: {floor: 0.7, min_holdout_rows: 30}
compression: {enabled: false}
"""


def _wines() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    bunch = load_wine(as_frame=True)
    frame = bunch.data[["alcohol", "malic_acid", "color_intensity", "proline"]].copy()
    rng = np.random.default_rng(7)
    frame.loc[rng.choice(len(frame), 8, replace=False), "malic_acid"] = np.nan
    frame["region"] = rng.choice(["north", "south", None], len(frame))
    frame["cultivar"] = np.array(["barolo", "grignolino", "barbera"])[bunch.target]
    frame["wine_id"] = [f"w{i:03d}" for i in range(len(frame))]
    return frame


def test_a_spec_and_a_csv_give_a_registered_champion(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "specs").mkdir(parents=True)
    (home / "specs" / "wine_origin.yaml").write_text(SPEC)
    landing = home / "landing" / "wine_origin"
    landing.mkdir(parents=True)
    _wines().to_csv(landing / "wines_2026_11.csv", index=False)

    result = subprocess.run(
        [AIMASS, "run", "--use-case", "wine_origin"],
        env=env_for(home),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "[wine_origin] registered version 1" in result.stdout

    settings = load_settings(home)
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    champion = client.get_model_version_by_alias("wine_origin", "champion")
    assert float(champion.tags["holdout.accuracy"]) > 0.8
    assert champion.tags["gate.promote"] == "true"

    status = subprocess.run([AIMASS, "status", "--json"], env=env_for(home), capture_output=True, text=True)
    report = json.loads(status.stdout)["use_cases"]
    assert {"credit_risk", "breast_cancer", "digits", "wine_origin"} <= set(report)
    assert report["wine_origin"]["champion"]["primary_metric"] == "accuracy"
    assert report["wine_origin"]["bento"].startswith("wine_origin:")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("task: multiclass", "task: binary"), "binary' needs exactly 2 classes"),
        (("name: wine_origin", "name: Wine Origin"), "must be lower-case"),
        (("kind: category, categories: [north, south]", "kind: category"), "needs 'categories'"),
        (("metric: accuracy", "metric: f2"), "metric"),
        (("families:", "familes:"), "familes"),
        (("compression: {enabled: false}", "training: {max_rows: 10}"), "training.max_rows"),
    ],
)
def test_spec_errors_name_the_file_and_field(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    (tmp_path / "wine_origin.yaml").write_text(SPEC.replace(*edit))
    with pytest.raises(SpecError, match="wine_origin.yaml") as info:
        load_specs(tmp_path)
    assert message in str(info.value)


def test_a_use_case_defined_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "credit_risk.yaml").write_text(SPEC.replace("name: wine_origin", "name: credit_risk"))
    with pytest.raises(SpecError, match="already defined"):
        load_specs(tmp_path)


def test_shipped_specs_load() -> None:
    specs = load_specs()
    assert set(specs) == {"credit_risk", "breast_cancer", "digits", "health_breaches"}
    text = specs["health_breaches"].contract.column("report")
    assert (text.kind, text.max, text.scrub) == ("text", 20_000, True)
    assert specs["digits"].contract.feature_names[:2] == ["pixel_0_0", "pixel_0_1"]
    assert len(specs["digits"].contract.features) == 64
    assert specs["credit_risk"].budget("random_forest") == (4, 90.0)
    assert specs["credit_risk"].training.max_rows == 20_000
