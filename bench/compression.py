"""Compression trade-off per use case and family: size ratio, latency ratios, metric change.

Each family is fitted with its default parameters on a seeded 80/20 split (the same data loaders as
bench/model_families.py); compress() then measures both variants on the held-out rows in one process.

    .venv/bin/python bench/compression.py
"""

import argparse

import torch

from aimass_pipeline.models import get_family
from aimass_pipeline.training.compression import compress
from bench.model_families import USE_CASES, split

FAMILIES = {
    "credit_risk": ["logreg", "random_forest", "xgboost", "torch_mlp"],
    "breast_cancer": ["logreg", "random_forest", "xgboost", "torch_mlp"],
    "digits": ["logreg", "random_forest", "xgboost", "torch_mlp", "torch_cnn"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=0.002)
    args = parser.parse_args()
    torch.set_num_threads(1)
    header = f"{'use case':<14}{'family':<14}{'method':<14}{'kept':<6}{'size x':>8}{'1-row x':>9}{'batch x':>9}{'metric':>9}{'delta':>9}"
    print(header)
    for use_case, families in FAMILIES.items():
        layout, X, y = USE_CASES[use_case]()
        metric = "accuracy" if use_case == "digits" else "roc_auc"
        X_train, X_test, y_train, y_test = split(X, y, args.seed)
        for name in families:
            family = get_family(name)
            n_classes = len(set(y))
            model = family.build(layout, n_classes, {}, args.seed).fit(X_train, y_train)
            r = compress(model, X_test, y_test, metric=metric, tolerance=args.tolerance, seed=args.seed)
            if r.method == "none" or r.size_before is None:
                print(f"{use_case:<14}{name:<14}{'none':<14}{'-':<6}  {r.reason}")
                continue
            print(
                f"{use_case:<14}{name:<14}{r.method:<14}{'yes' if r.kept else 'no':<6}"
                f"{r.size_after / r.size_before:>8.2f}"
                f"{r.latency_ms_per_row_single_after / r.latency_ms_per_row_single_before:>9.2f}"
                f"{r.latency_ms_per_row_batch_after / r.latency_ms_per_row_batch_before:>9.2f}"
                f"{r.metric_before:>9.4f}{r.metric_after - r.metric_before:>+9.4f}"
            )
    print(
        "x = compressed / original (lower is better); delta = metric after - before (worst of batch and single-row)."
    )


if __name__ == "__main__":
    main()
