"""Ingestion + contract validation against a bare pyarrow CSV read + Parquet write of the same file.

Generates seeded credit-like CSV files (about 5% nulls in the nullable columns, a few bad rows well below the
contract's max_reject_share), then times each reader in a fresh subprocess and reports its peak RSS (VmHWM).

    .venv/bin/python -m bench.ingestion [--rows 1000000 10000000] [--workdir /tmp/aimass-bench-ingestion]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.csv as pv
import pyarrow.parquet as pq

from aimass_pipeline.collection.ingestion.stream import ingest_file
from aimass_pipeline.collection.synthetic import write_credit_csv
from aimass_pipeline.core.specs import load_specs

CONTRACT = load_specs()["credit_risk"].contract


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _bare(csv_path: Path, out: Path) -> int:
    reader = pv.open_csv(csv_path)
    rows = 0
    with pq.ParquetWriter(out, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def _aimass(csv_path: Path, out: Path) -> int:
    report = ingest_file(
        str(csv_path),
        CONTRACT,
        batch_id="bench",
        out_path=str(out),
        rejects_path=str(out.with_suffix(".rejects.parquet")),
    )
    return report.rows_read


def _child(kind: str, csv_path: Path, out: Path) -> None:
    started = time.perf_counter()
    rows = {"bare": _bare, "aimass": _aimass}[kind](csv_path, out)
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_rss_mib": _peak_rss_mib()}))


def _measure(kind: str, csv_path: Path, out: Path) -> dict:
    command = [sys.executable, "-m", "bench.ingestion", "--child", kind, str(csv_path), str(out)]
    result = subprocess.run(
        command, capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/aimass-bench-ingestion"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each reader, alternating; the fastest counts"
    )
    parser.add_argument("--child", nargs=3, metavar=("KIND", "CSV", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    print("| rows | reader | seconds | rows/s | peak RSS MiB | throughput vs bare | file MiB |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for rows in args.rows:
        csv_path = args.workdir / f"credit_{rows}_{args.seed}.csv"
        if not csv_path.exists():
            write_credit_csv(csv_path, rows, seed=args.seed)
        size = os.path.getsize(csv_path) / 2**20
        best: dict[str, dict] = {}
        for _ in range(args.repeat):
            for kind in ("bare", "aimass"):
                with tempfile.TemporaryDirectory(dir=args.workdir) as out:
                    r = _measure(kind, csv_path, Path(out) / "out.parquet")
                if kind not in best or r["seconds"] < best[kind]["seconds"]:
                    best[kind] = r
        for name, r in (("bare pyarrow", best["bare"]), ("aimass ingest_file", best["aimass"])):
            ratio = best["bare"]["seconds"] / r["seconds"]
            print(
                f"| {rows:,} | {name} | {r['seconds']:.1f} | {r['rows'] / r['seconds']:,.0f} "
                f"| {r['peak_rss_mib']:,.0f} | {ratio:.2f}x | {size:,.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
