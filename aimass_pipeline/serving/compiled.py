"""What the service scores with: the champion compiled into one ONNX graph when it compiles and agrees.

The gate checks the compiled graph on the whole holdout; the service, which has no holdout, checks it again
on ``CHECK_ROWS`` records drawn from the contract (every column over its whole range, missing values
included) before serving it. A model that does not compile, or disagrees, is served as it is and the reason
logged: slower, never different.
"""

import dataclasses
import logging
from typing import Any

import numpy as np
import pandas as pd

from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.models.compile import CompiledModel, CompileError, compile_model
from aimass_pipeline.serving.served_model import ServedModel

CHECK_ROWS = 512
log = logging.getLogger(__name__)


def contract_rows(contract: Contract, n: int = CHECK_ROWS, seed: int = 0) -> pd.DataFrame:
    """``n`` records the contract accepts, spread over each column's range, about 10 % missing where allowed."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for col in contract.features:
        if col.kind == "category":
            values: np.ndarray = rng.choice(np.array(col.categories, dtype=object), n)
        elif col.kind == "text":  # a few words, some a model never saw
            words = np.array(
                ["patient", "records", "laptop", "stolen", "billing", "zqx", "server"], dtype=object
            )
            values = np.array([" ".join(rng.choice(words, 1 + i % 12)) for i in range(n)], dtype=object)
        else:
            low = col.min if col.min is not None else -1_000.0
            high = col.max if col.max is not None else low + 2_000.0
            # Half spread over the whole range, half near its low end, where most real values sit.
            wide = rng.uniform(low, high, n)
            near = low + rng.exponential(max((high - low) / 100, 1e-9), n).clip(0, high - low)
            values = np.where(rng.random(n) < 0.5, wide, near)
            values = np.round(values) if col.kind == "int" else values
        if col.nullable:
            missing = rng.random(n) < 0.1
            values = (
                np.where(missing, None, values)
                if col.kind in ("category", "text")
                else np.where(missing, np.nan, values)
            )
        columns[col.name] = values
    frame = pd.DataFrame(columns)[list(contract.feature_names)]
    return frame.astype({name: object for name in [*contract.categorical_features, *contract.text_features]})


def fastest(model: Any, contract: Contract, features: list[str] | None = None) -> Any:
    """The compiled graph of ``model`` when it compiles and agrees on contract records, else ``model``.
    ``features``: the columns the model was trained on, when a subset of the contract's."""
    if isinstance(model, CompiledModel):
        return model
    rows = contract_rows(contract)
    missing = sorted(set(features or ()) - set(rows.columns))
    if missing:  # vetting refuses such a version; never compile it against columns nobody sends
        log.warning("serving %s uncompiled: the model needs columns %s", contract.use_case, missing)
        return model
    try:
        compiled = compile_model(model, rows if features is None else rows[features])
    except CompileError as exc:
        log.warning("serving %s uncompiled (slower, same scores): %s", contract.use_case, exc)
        return model
    log.info(
        "serving %s as one ONNX graph (max |diff| %.2g over %d contract records)",
        contract.use_case,
        compiled.max_abs_diff,
        compiled.checked_rows,
    )
    return compiled


def compiled_served(served: ServedModel, contract: Contract) -> ServedModel:
    """``served`` with its model compiled (``fastest``) on the columns its version was trained on."""
    return dataclasses.replace(served, model=fastest(served.model, contract, served.features))
