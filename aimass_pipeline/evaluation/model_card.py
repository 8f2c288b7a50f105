"""A markdown model card for each registered version: what it was trained on, how good it is (with
uncertainty), why the gate promoted it or not, what compression traded, and where it came from.

Deterministic (no timestamps) so an unchanged version renders the same card twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def _text(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if value != 0 and abs(value) < 1e-3 else f"{value:.4f}"
    return str(value)


def _cell(value: Any) -> str:
    """A table cell: a raw "|" would split the cell and a newline would end the row."""
    return _text(value).replace("\\", "\\\\").replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    header = list(header)
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _data(data: Mapping[str, Any]) -> str:
    balance = data.get("class_balance") or {}
    parts = [
        _table(
            ["quantity", "value"],
            [["training rows", data.get("rows")], ["holdout rows", data.get("holdout_rows")]],
        ),
        "Class balance:\n\n" + _table(["class", "share"], balance.items())
        if balance
        else "Class balance: n/a",
    ]
    if data.get("sampling"):
        # A big table: which rows the model was fitted and judged on (spec training.max_rows).
        parts.append(f"Sampling: {data['sampling']}")
    batches = [b if isinstance(b, Mapping) else {"batch": b} for b in data.get("batches") or []]
    if batches:
        columns = list(dict.fromkeys(key for batch in batches for key in batch))  # first-seen order
        parts.append("Batches:\n\n" + _table(columns, [[b.get(c) for c in columns] for b in batches]))
    else:
        parts.append("Batches: n/a")
    return "\n\n".join(parts)


def _metrics(metrics: Mapping[str, float], intervals: Mapping[str, tuple[float, float]]) -> str:
    rows = []
    for name, value in metrics.items():
        low_high = intervals.get(name)
        rows.append([name, value, f"[{_text(low_high[0])}, {_text(low_high[1])}]" if low_high else "n/a"])
    return _table(["metric", "holdout value", "interval"], rows)


def _gate(gate: Mapping[str, Any]) -> str:
    ci = (
        f"[{gate['ci_low']:+.4f}, {gate['ci_high']:+.4f}]"
        if gate.get("ci_low") is not None and gate.get("ci_high") is not None
        else None
    )
    p_value = gate.get("p_value")
    budget = gate.get("max_latency_ms")
    rows = [
        ["promoted", gate.get("promote")],
        ["reason", gate.get("reason")],
        ["metric", gate.get("metric")],
        ["test", gate.get("test")],
        ["challenger", gate.get("challenger")],
        ["champion", gate.get("champion")],
        ["delta (challenger - champion)", gate.get("delta")],
        [f"{1 - gate.get('alpha', 0.05):.0%} CI of delta", ci],
        ["p-value (one-sided)", f"{p_value:.3g}" if p_value is not None else None],
        ["alpha / min delta / floor", f"{gate.get('alpha')} / {gate.get('min_delta')} / {gate.get('floor')}"],
        ["holdout rows", gate.get("n")],
        ["latency (ms)", f"{_text(gate.get('challenger_latency_ms'))} (budget {_text(budget)})"],
    ]
    return _table(["", "value"], rows)


def _compression(compression: Mapping[str, Any] | None) -> str:
    if not compression:
        return "No compression was attempted for this version."
    if compression.get("method") == "none":
        return f"Not compressed: {_cell(compression.get('reason'))}"

    def row(label: str, key: str, as_delta: bool = False) -> list[Any]:
        before, after = compression.get(f"{key}_before"), compression.get(f"{key}_after")
        if before is None or after is None:
            return [label, before, after, None]
        if as_delta:  # a metric's change reads better as a difference than as a ratio
            return [label, before, after, f"{after - before:+.4f}"]
        return [label, before, after, f"{after / before:.3f}x" if before else None]

    table = _table(
        ["quantity", "original", "compressed", "change"],
        [
            row("size (bytes)", "size"),
            row("latency, single row (ms/row)", "latency_ms_per_row_single"),
            row("latency, batch (ms/row)", "latency_ms_per_row_batch"),
            row(str(compression.get("metric", "metric")), "metric", as_delta=True),
        ],
    )
    summary = _table(
        ["", "value"],
        [
            ["method", compression.get("method")],
            ["kept", compression.get("kept")],
            ["max abs probability difference", compression.get("max_abs_proba_diff")],
            ["rows measured", compression.get("rows")],
            ["reason", compression.get("reason")],
        ],
    )
    return f"{table}\n\n{summary}"


def _lineage(lineage: Mapping[str, Any]) -> str:
    batches = lineage.get("data_batches") or []
    return _table(
        ["", "value"],
        [
            ["Dagster run", lineage.get("dagster_run_id")],
            ["MLflow run", lineage.get("mlflow_run_id")],
            ["code version", lineage.get("code_version")],
            ["data batches", ", ".join(map(str, batches)) if batches else None],
        ],
    )


def render_model_card(
    *,
    use_case: str,
    description: str,
    version: str | int,
    family: str,
    params: dict,
    data: dict,
    metrics: dict[str, float],
    intervals: dict[str, tuple[float, float]],
    gate: dict,
    compression: dict | None,
    lineage: dict,
) -> str:
    """Markdown; ``gate`` is GateDecision.as_dict(), ``compression`` CompressionResult.as_dict() or None."""
    sections = [
        f"# Model card: {_cell(use_case)} v{_cell(version)}",
        f"Family: **{_cell(family)}**. Gate: **{'promoted' if gate.get('promote') else 'not promoted'}**.",
        "## Parameters\n\n" + _table(["parameter", "value"], sorted(params.items())),
        "## Data\n\n" + _data(data),
        "## Metrics\n\nScored on the frozen holdout; intervals are 95% bootstrap percentiles.\n\n"
        + _metrics(metrics, intervals),
        "## Gate decision\n\n" + _gate(gate),
        "## Compression\n\n" + _compression(compression),
        "## Lineage\n\n" + _lineage(lineage),
        "## Intended use\n\n"
        + _text(description).replace("|", "\\|")  # prose keeps its line breaks; only "|" could start a table
        + "\n\nThe figures above hold for data like the holdout; re-check them before using the model on a "
        "population, period or product the training batches do not cover. Scores support a human decision "
        "and are not a decision on their own.",
    ]
    return "\n\n".join(sections) + "\n"


def markdown_table(scores: dict[str, dict[str, float]]) -> str:
    """The candidates' metrics as a markdown table, one row per candidate."""
    names = sorted({n for metrics in scores.values() for n in metrics if n != "rows"})
    lines = ["| candidate | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for family, metrics in scores.items():
        lines.append(
            f"| {family} | " + " | ".join(f"{metrics.get(n, float('nan')):.4f}" for n in names) + " |"
        )
    return "\n".join(lines)


def sampling_note(run_tags: dict, holdout_used: int, holdout_rows: int) -> str:
    """How much of a scanned table the champion saw: empty when every row went through a frame."""
    fit_path, notes = run_tags.get("aimass.fit_path", "frame"), []
    train, table = run_tags.get("aimass.train_rows"), run_tags.get("aimass.training_set_rows")
    if fit_path == "sample":
        notes.append(f"fitted on the fitting rows ({train}) of a seeded sample of the {table} training rows")
    elif fit_path != "frame":
        notes.append(
            f"fitted on all {train} fitting rows of the {table} training rows, streamed ({fit_path})"
        )
    if holdout_used < holdout_rows:
        notes.append(f"scored on a seeded sample of {holdout_used} of the {holdout_rows} holdout rows")
    return "; ".join(notes)
