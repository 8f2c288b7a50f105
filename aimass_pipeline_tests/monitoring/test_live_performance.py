"""Labels joined to served predictions by id: the metric, the rows matched, and bad label files."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aimass_pipeline.core.errors import DataContractError
from aimass_pipeline.monitoring.live_performance import live_performance, read_labels

CLASSES = ["good", "bad"]


def _predictions(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    # An informative score: the true class shifts the probability up.
    probability = np.clip(0.3 + 0.4 * truth + rng.normal(0, 0.2, n), 0, 1)
    frame = pd.DataFrame(
        {
            "prediction_id": [f"p{i}" for i in range(n)],
            "probability": probability,
            "label": np.where(probability >= 0.5, "bad", "good"),
            "model_version": ["1"] * (n // 2) + ["2"] * (n - n // 2),
        }
    )
    return frame, truth


def test_roc_auc_on_matched_rows_overall_and_per_version(tmp_path: Path) -> None:
    predictions, truth = _predictions(400)
    labels = pd.DataFrame({"prediction_id": predictions["prediction_id"], "Status": np.array(CLASSES)[truth]})
    labels.iloc[:300].to_csv(tmp_path / "first.csv", index=False)
    # Labels for predictions outside the window count as landed, not matched.
    pd.concat([labels.iloc[300:], pd.DataFrame({"prediction_id": ["old1"], "Status": ["good"]})]).to_parquet(
        tmp_path / "second.parquet"
    )
    (tmp_path / ".partial.csv").write_text("garbage")

    landed = read_labels(tmp_path, "Status", CLASSES)
    result = live_performance(predictions.iloc[:350], landed, "Status", CLASSES, "roc_auc")

    assert len(landed) == 401 and result.rows_labelled == 401
    assert result.rows_matched == 350 and result.rows_predicted == 350
    assert 0.85 < result.value < 1.0
    assert set(result.by_version) == {"1", "2"} and result.by_version["2"]["rows"] == 150
    assert "live roc_auc" in result.as_markdown()


def test_accuracy_for_multiclass_and_nothing_matched() -> None:
    predictions = pd.DataFrame(
        {
            "prediction_id": ["a", "b", "c", "d"],
            "probability": 0.9,
            "label": ["x", "y", "z", "x"],
            "model_version": "3",
        }
    )
    labels = pd.DataFrame({"prediction_id": ["a", "b", "c", "d"], "kind": ["x", "y", "x", "x"]})

    result = live_performance(predictions, labels, "kind", ["x", "y", "z"], "accuracy")
    assert result.value == pytest.approx(0.75) and result.rows_matched == 4

    none = live_performance(
        predictions, labels.assign(prediction_id=["q", "r", "s", "t"]), "kind", ["x", "y", "z"], "accuracy"
    )
    assert none.value is None and none.rows_matched == 0 and "no served prediction" in none.reason


def test_one_class_only_has_no_roc_auc() -> None:
    predictions, _ = _predictions(20)
    labels = pd.DataFrame({"prediction_id": predictions["prediction_id"], "Status": "good"})

    result = live_performance(predictions, labels, "Status", CLASSES, "roc_auc")

    assert result.value is None and "both classes" in result.reason


def test_bad_label_files_name_file_column_and_rows(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("prediction_id,outcome\np1,good\n")
    with pytest.raises(DataContractError, match=r"a\.csv, column 'Status'.*labels_columns"):
        read_labels(tmp_path, "Status", CLASSES)

    (tmp_path / "a.csv").write_text("prediction_id,Status\np1,good\np2,maybe\n")
    with pytest.raises(DataContractError, match=r"a\.csv, column 'Status', row\(s\) 3: \[label_in_classes\]"):
        read_labels(tmp_path, "Status", CLASSES)

    (tmp_path / "a.csv").write_text("prediction_id,Status\np1,good\n")
    (tmp_path / "b.csv").write_text("prediction_id,Status\np1,BAD\n")
    with pytest.raises(DataContractError, match="one_label_per_prediction"):
        read_labels(tmp_path, "Status", CLASSES)


def test_no_labels_yet_is_an_empty_frame(tmp_path: Path) -> None:
    assert read_labels(tmp_path / "missing", "Status", CLASSES).empty


def test_labels_follow_the_contracts_category_rule(tmp_path: Path) -> None:
    # Classes declared with capitals, as the data writes them: a label in any spelling the rule accepts is
    # that class, in its declared spelling, as the served predictions name it.
    (tmp_path / "a.csv").write_text("prediction_id,Attrition\np1,Yes\np2, no\np3,YES\t\np4,No\n")
    landed = read_labels(tmp_path, "Attrition", ["No", "Yes"])
    assert landed["Attrition"].tolist() == ["Yes", "No", "Yes", "No"]

    (tmp_path / "a.csv").write_text("prediction_id,Attrition\np1,Yes\np2,Y\n")
    with pytest.raises(DataContractError, match=r"row\(s\) 3: \[label_in_classes\].*'Y'"):
        read_labels(tmp_path, "Attrition", ["No", "Yes"])
