"""What `aimass run` shows a person: its own lines and the end-of-run summary on the terminal; everything
third-party (Dagster's event log, dbt's output, MLflow's and GX's warnings and progress bars, from this process
and the processes it starts) goes to ``AIMASS_HOME/logs/run-<time>.log``. Errors still reach the terminal in
full: a failed run's step errors are printed whole, and a traceback (a bug) is printed after the terminal is
given back."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO


@dataclass
class Terminal:
    out: IO[str]
    err: IO[str]
    log_file: Path


@contextmanager
def third_party_to_log(logs_dir: Path) -> Iterator[Terminal]:
    """File descriptors 1 and 2 point at the log file for the block (so child processes' output lands there
    too); the returned Terminal writes to the real terminal."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    log_file = logs_dir / f"run-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    out = os.fdopen(os.dup(saved_out), "w", buffering=1)
    err = os.fdopen(os.dup(saved_err), "w", buffering=1)
    with open(log_file, "ab", buffering=0) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        logging.captureWarnings(True)  # warnings through logging, into the same file, with their origin
        try:
            yield Terminal(out, err, log_file)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)
            out.close()
            err.close()


def _expected(error) -> bool:
    from aimass_pipeline.core.errors import DataContractError
    from aimass_pipeline.core.signing import UntrustedArtifactError

    # Refusals AIMass makes on purpose: their one line names the file, row (or artifact) and rule.
    expected = {DataContractError.__name__, UntrustedArtifactError.__name__}
    while error is not None:
        if error.cls_name in expected:
            return True
        error = error.cause
    return False


def step_errors(result, expected_to: IO[str] | None = None) -> list[str]:
    """Every failed step's whole error (message, stack and causes), for the terminal. An expected refusal
    (a data contract broken, a tampered artifact) is whole in the one line ``run_failures`` prints: its stack
    goes to ``expected_to`` (the run's log file) instead, when given."""
    errors = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            text = f"step {event.step_key}:\n{event.step_failure_data.error.to_string()}"
            if expected_to is not None and _expected(event.step_failure_data.error):
                print(text, file=expected_to, flush=True)
            else:
                errors.append(text)
    return errors


def _fmt(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def summary_row(
    name: str, metric: str, floor: float, champion: dict, versions: list[dict], bento: str
) -> list:
    """One row of the summary: the champion (family, version), its holdout metric against the spec's floor
    with the gate's interval when this run's decision was about it, its single-row latency, the bento."""
    champ_version = int(champion["champion_version"]) if champion.get("champion_version") else None
    entry = next((v for v in versions if v["version"] == champ_version), None)
    tags = entry["tags"] if entry else {}
    value = float(tags[f"holdout.{metric}"]) if f"holdout.{metric}" in tags else None
    decision = champion["decision"] if str(champion["version"]) == str(champ_version) else {}
    ci = (
        f"[{_fmt(decision['ci_low'])}, {_fmt(decision['ci_high'])}] vs previous"
        if decision.get("ci_low") is not None
        else "no paired interval (first champion)"
        if decision
        else "decided in an earlier run"
    )
    latency = decision.get("challenger_latency_ms")
    return [
        name,
        f"{tags.get('aimass.family', '?')} v{champ_version}",
        f"{metric} {_fmt(value)} (floor {floor:.4f}); {ci}",
        f"{latency:.2f} ms" if latency is not None else "n/a",
        bento,
        f".venv/bin/aimass serve {name} --port 3000",
    ]


def render_table(rows: list[list[str]]) -> str:
    header = ["use case", "champion", "holdout metric vs bar", "1-row latency", "bento", "serve it"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), line, *(fmt.format(*map(str, r)) for r in rows)]
    return "\n".join(text.rstrip() for text in lines)
