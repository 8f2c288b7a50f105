"""The variant of a candidate the service will run: its compiled graph when that agrees with it on the
whole holdout (``models.compile``), else the pipeline itself. The gate times this variant."""

from logging import Logger
from typing import Any

import pandas as pd

from aimass_pipeline.models.compile import CompileError, compile_model


def served_variant(model: Any, holdout: pd.DataFrame, log: Logger) -> tuple[Any, dict[str, float]]:
    """(what to time, metrics saying whether it compiled and how closely it agrees)."""
    try:
        compiled = compile_model(model, holdout)
    except CompileError as exc:
        log.warning(f"timed uncompiled: {exc}")
        return model, {"compiled": 0.0}
    return compiled, {
        "compiled": 1.0,
        "compiled_max_abs_diff": compiled.max_abs_diff,
        "compiled_checked_rows": float(compiled.checked_rows),
    }
