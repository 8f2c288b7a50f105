"""The model-ready table of a use case transformed in Python (``transformation: python`` in its spec)."""

from __future__ import annotations

import pandas as pd

from aimass_pipeline.core.contracts import Contract


def model_table(clean: pd.DataFrame, contract: Contract, label_column: str = "label") -> pd.DataFrame:
    """The model-ready table: key, typed features, integer label (the spec's class order) and lineage."""
    out = clean[[contract.key, *contract.feature_names]].copy()
    out[contract.key] = out[contract.key].astype(str)
    for name in contract.numeric_features:
        out[name] = out[name].astype("float64")
    out[label_column] = contract.encode_target(clean[contract.target])
    out["batch_id"] = clean["_batch_id"].astype(str)
    out["source_file"] = clean["_source_file"].astype(str)
    return out.sort_values(contract.key, kind="stable").reset_index(drop=True)
