"""The health_breaches baseline: untuned TF-IDF + logistic regression (scikit-learn defaults), 5-fold
stratified ROC AUC over the whole packaged data set, and the same model on the frozen key-hash holdout.

    .venv/bin/python -m bench.text_baseline
"""

from __future__ import annotations

from sklearn.model_selection import StratifiedKFold, cross_val_score

from aimass_pipeline.collection.datasets import packaged_frame
from aimass_pipeline.core.scoring import score
from aimass_pipeline.core.specs import PACKAGED_SPECS, load_spec
from aimass_pipeline.core.splits import SELECTION_FRACTION, SELECTION_SALT, holdout_mask
from aimass_pipeline.models import FeatureLayout, get_family
from aimass_pipeline.training.splits import split_frame


def main() -> None:
    spec = load_spec(PACKAGED_SPECS / "health_breaches.yaml")
    contract = spec.contract
    frame = packaged_frame(spec.data.seed_source, contract)
    X, y = frame[contract.feature_names], contract.encode_target(frame[contract.target])
    layout = FeatureLayout(numeric=[], text=contract.text_features)
    family = get_family("text_logreg")
    # C 1.0 and every other setting at scikit-learn's default: the untuned baseline.
    baseline = family.build(layout, 2, {}, seed=spec.seed)
    folds = StratifiedKFold(5, shuffle=True, random_state=spec.seed)
    aucs = cross_val_score(baseline, X, y, cv=folds, scoring="roc_auc")
    print(f"health_breaches: {len(y)} reports, {y.mean():.1%} filed by business associates")
    print(f"baseline TF-IDF + logistic regression, 5-fold ROC AUC {aucs.mean():.4f} (sd {aucs.std():.4f})")
    train, holdout = split_frame(frame, contract.key, spec.holdout_fraction)
    # The lifecycle fits each candidate on the training rows outside the selection rows (core.splits), so
    # the baseline that the champion must beat on the holdout is fitted on those same rows.
    fitting = train[~holdout_mask(train[contract.key].astype(str), SELECTION_FRACTION, SELECTION_SALT)]
    holdout_y = contract.encode_target(holdout[contract.target])
    for rows, label in ((fitting, "the champion's fitting rows"), (train, "every training row")):
        fitted = family.build(layout, 2, {}, seed=spec.seed).fit(
            rows[contract.feature_names], contract.encode_target(rows[contract.target])
        )
        proba = fitted.predict_proba(holdout[contract.feature_names])
        auc = score("roc_auc", holdout_y, proba)
        print(
            f"baseline fitted on {label} ({len(rows)}), frozen holdout ({len(holdout)} rows): ROC AUC {auc:.4f}"
        )


if __name__ == "__main__":
    main()
