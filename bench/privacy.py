"""What privacy costs (issue 14): ingestion with PII against the same ingestion without, and erasure.

1. Ingestion throughput at N rows of the medical use case (30 float features, a patient id and a birth date):
   the same file through ``ingest_file`` with the PII transform (HMAC pseudonyms + month generalisation) and
   with the transform switched off; best of ``--repeat`` runs each, alternating. Also: the raw zone's copy
   sealed (AES-GCM) against a plain copy. Goal: with PII >= 0.8x the rows/s without.
2. Erasure wall time at N rows across every store: the sealed raw zone, the lake's batch table, a prediction
   log, the DuckDB warehouse; one subject erased with ``privacy.erasure.erase``.

    .venv/bin/python -m bench.privacy [--rows 1000000] [--workdir /tmp/aimass-bench-privacy]
"""

import argparse
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from aimass_pipeline.collection.datasets import packaged_frame
from aimass_pipeline.collection.ingestion import stream
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.pseudonyms import pseudonym_key, raw_zone_key
from aimass_pipeline.core.specs import load_specs

SPEC = load_specs()["breast_cancer"]
CONTRACT = SPEC.contract


@dataclass(frozen=True)
class _Landed:
    name: str
    path: Path
    sha256: str
    size: int

    def source(self):
        from aimass_pipeline.core.locations import locate

        return locate(self.path)


def write_medical_csv(path: Path, rows: int, distinct: float, seed: int = 0) -> None:
    base = packaged_frame("sklearn:breast_cancer", CONTRACT)
    rng = np.random.default_rng(seed)
    frame = base.iloc[rng.integers(0, len(base), rows)].reset_index(drop=True)
    frame[CONTRACT.key] = [f"s{i:08d}" for i in range(rows)]
    patients = rng.integers(0, max(1, int(rows * distinct)), rows)
    frame["patient_id"] = [f"MRN{p:08d}" for p in patients]
    born = np.datetime64("1940-01-01") + rng.integers(0, 60 * 365, rows)
    frame["date_of_birth"] = born.astype(str)
    frame.to_csv(path, index=False)


def _ingest(csv: Path, out: Path, protected: bool) -> float:
    original = stream.protect
    if not protected:
        stream.protect = lambda table, spec, key: (table, {})
    try:
        started = time.perf_counter()
        stream.ingest_file(
            str(csv),
            CONTRACT,
            batch_id="bench",
            out_path=str(out),
            rejects_path=str(out.with_suffix(".rejects.parquet")),
            pii_key=pseudonym_key("bench secret"),
        )
        return time.perf_counter() - started
    finally:
        stream.protect = original


def _store(csv: Path, lake_dir: Path, key: bytes | None) -> float:
    shutil.rmtree(lake_dir, ignore_errors=True)
    from aimass_pipeline.core.locations import locate

    landed = _Landed(csv.name, csv, locate(csv).sha256(), csv.stat().st_size)
    started = time.perf_counter()
    Lake(str(lake_dir)).store_raw_batch("breast_cancer", "bench", [landed], key)
    return time.perf_counter() - started


def bench_ingestion(csv: Path, workdir: Path, rows: int, repeat: int) -> Path:
    timings: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(repeat):
        for protected in (False, True):
            timings[protected].append(_ingest(csv, workdir / f"out-{protected}.parquet", protected))
    plain, with_pii = min(timings[False]), min(timings[True])
    print(
        f"ingestion, {rows:,} rows: without PII {rows / plain:,.0f} rows/s ({plain:.2f} s), "
        f"with PII {rows / with_pii:,.0f} rows/s ({with_pii:.2f} s): ratio {plain / with_pii:.2f}x (goal >= 0.8x)"
    )
    copy = min(_store(csv, workdir / "lake-plain", None) for _ in range(repeat))
    sealed = min(_store(csv, workdir / "lake-sealed", raw_zone_key("bench secret")) for _ in range(repeat))
    print(
        f"raw zone copy of {csv.stat().st_size / 2**20:.0f} MiB: plain {copy:.2f} s, sealed (AES-GCM) "
        f"{sealed:.2f} s: ratio {copy / sealed:.2f}x"
    )
    return workdir / "out-True.parquet"


def bench_erasure(csv: Path, accepted: Path, workdir: Path, rows: int) -> None:
    from aimass_pipeline.privacy.erasure import erase
    from aimass_pipeline.settings import load_settings

    home = workdir / "home"
    shutil.rmtree(home, ignore_errors=True)
    os.environ["AIMASS_HOME"], os.environ["AIMASS_PII_KEY"] = str(home), "bench secret"
    os.environ.pop("AIMASS_LAKE_URL", None)
    settings = load_settings().prepare()
    lake = Lake(settings.lake_url)
    _store_into(lake, csv, raw_zone_key("bench secret"))
    table = pd.read_parquet(accepted)
    lake.write_parquet(table, "assets", "breast_cancer", "raw_biopsies_batch", "bench.parquet")
    log = pd.DataFrame(
        {
            "prediction_id": [f"p{i}" for i in range(min(rows, 200_000))],
            "inputs": [f'{{"patient_id": "{p}"}}' for p in table["patient_id"].head(200_000)],
        }
    )
    lake.write_parquet(log, "predictions", "breast_cancer", "date=2026-12-06", "hour=00", "bench.parquet")
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        conn.execute("create schema if not exists breast_cancer")
        conn.execute(
            f"create table breast_cancer.biopsies_features as select * from read_parquet('{accepted}')"
        )
    subject = pd.read_csv(csv, usecols=["patient_id"], nrows=1)["patient_id"][0]
    started = time.perf_counter()
    done = erase(settings, SPEC, subject, reason="bench")
    seconds = time.perf_counter() - started
    stores = sorted({r["store"] for r in done.receipt["removed"]})
    print(f"erasure, {rows:,} rows: {seconds:.2f} s wall, {done.rows_removed} rows removed from {stores}")


def _store_into(lake: Lake, csv: Path, key: bytes) -> None:
    from aimass_pipeline.core.locations import locate

    landed = _Landed(csv.name, csv, locate(csv).sha256(), csv.stat().st_size)
    lake.store_raw_batch("breast_cancer", "bench", [landed], key)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--distinct", type=float, default=0.9, help="patients per row (0.9: nearly every row a new patient)"
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/aimass-bench-privacy"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    csv = args.workdir / f"medical-{args.rows}-{args.distinct}.csv"
    if not csv.exists():
        write_medical_csv(csv, args.rows, args.distinct)
    accepted = bench_ingestion(csv, args.workdir, args.rows, args.repeat)
    bench_erasure(csv, accepted, args.workdir, args.rows)


if __name__ == "__main__":
    main()
