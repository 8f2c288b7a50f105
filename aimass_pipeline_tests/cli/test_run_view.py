"""`aimass run` as a person sees it (issue 13 item 3): AIMass's lines and a summary table on the terminal,
third-party output in AIMASS_HOME/logs/, errors still on the terminal in full."""

import io
import subprocess
import sys
from pathlib import Path

from aimass_pipeline.cli.runview import Terminal
from aimass_pipeline_tests.conftest import AIMASS, ROOT, env_for


def test_run_prints_the_summary_table_and_logs_third_party_output(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = subprocess.run(
        [AIMASS, "run", "--use-case", "breast_cancer", "--max-trials", "0"],
        env=env_for(home),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    terminal = result.stdout + result.stderr
    assert "WARNING" not in terminal and "mlflow" not in terminal.lower(), terminal
    assert "Calculating Metrics" not in terminal and "Downloading artifacts" not in terminal, terminal
    table = result.stdout[result.stdout.index("use case  ") :]
    assert "breast_cancer" in table and "roc_auc 0." in table and "floor 0.9500" in table, table
    assert "ms" in table and "breast_cancer:" in table and "aimass serve breast_cancer" in table, table
    # The progress view: one line per stage as it ends, with its rows and seconds, in lifecycle order.
    stages = [
        line.split()[2] for line in result.stdout.splitlines() if line.startswith("[breast_cancer]   done")
    ]
    for stage in ("collection", "transformation", "training", "evaluation", "deployment"):
        assert stage in stages, result.stdout
    assert stages.index("collection") < stages.index("training") < stages.index("deployment"), stages
    assert any(" 569 rows " in line for line in result.stdout.splitlines()), result.stdout
    logs = list((home / "logs").glob("run-*.log"))
    assert len(logs) == 1, logs
    log = logs[0].read_text()
    # Third-party output is in the file; the warnings and bars fixed at their cause are nowhere.
    assert "INFO mlflow.store" in log and "dagster - WARNING" in log, log[-2000:]
    for noise in ("pickle or cloudpickle", "Calculating Metrics", "Downloading artifacts"):
        assert noise not in log, noise


def test_a_failed_step_reaches_the_terminal_in_full() -> None:
    from dagster import asset, materialize

    from aimass_pipeline.cli.lifecycle import _report

    @asset
    def broken() -> int:
        raise ValueError("row 7 breaks rule columns.range")

    result = materialize([broken], raise_on_error=False)
    out, err = io.StringIO(), io.StringIO()
    assert not _report("uc", "lifecycle", result, 1.0, Terminal(out, err, Path("x.log")))
    text = err.getvalue()
    assert "FAILED" in text and "row 7 breaks rule columns.range" in text
    assert "Traceback" in text or 'File "' in text, text  # the stack, not only the last line


def test_a_broken_data_contract_is_one_line_on_the_terminal_and_its_stack_in_the_log(tmp_path: Path) -> None:
    from dagster import asset, materialize

    from aimass_pipeline.cli.lifecycle import _report
    from aimass_pipeline.core.errors import DataContractError

    @asset
    def refused() -> int:
        raise DataContractError("-5.0 is below 0", source="batch_0002.csv", rule="range.min", rows=[5])

    result = materialize([refused], raise_on_error=False)
    out, err, log = io.StringIO(), io.StringIO(), tmp_path / "run.log"
    assert not _report("uc", "lifecycle", result, 1.0, Terminal(out, err, log))
    text = err.getvalue()
    assert "batch_0002.csv, row(s) 5: [range.min] -5.0 is below 0" in text, text
    assert 'File "' not in text and "Traceback" not in text and "Stack Trace" not in text, text
    assert str(log) in text, "the terminal says where the stack went"
    assert 'File "' in log.read_text() and "DataContractError" in log.read_text()


def test_a_bug_still_prints_its_traceback_on_the_terminal(tmp_path: Path) -> None:
    code = (
        "import subprocess, sys\n"
        "from pathlib import Path\n"
        "from aimass_pipeline.cli.runview import third_party_to_log\n"
        f"with third_party_to_log(Path({str(tmp_path)!r})) as term:\n"
        "    subprocess.run([sys.executable, '-c', 'import sys; print(\"WARNING child noise\", file=sys.stderr)'])\n"
        "    print('ours', file=term.out)\n"
        "    raise RuntimeError('a bug')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout == "ours\n"
    assert "RuntimeError: a bug" in proc.stderr and "WARNING" not in proc.stderr, proc.stderr
    (log,) = tmp_path.glob("run-*.log")
    assert "WARNING child noise" in log.read_text()
