"""Images per second landed (archive read, decode, checks, pixel columns, contract rules, Parquet write) against
a bare Pillow decode loop over the same PNG bytes, in the same run. Goal: ingestion >= 0.7x the bare loop.

A seeded zip of digits PNGs (scikit-learn's 8x8 digits, ``--copies`` times over with distinct keys).

    .venv/bin/python -m bench.images [--copies 4] [--repeats 5]
"""

import argparse
import io
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from aimass_pipeline.collection.datasets import packaged_archive
from aimass_pipeline.collection.ingestion.stream import ingest_file
from aimass_pipeline.core.specs import load_specs

DIGITS = load_specs()["digits"]


def _archive(copies: int) -> bytes:
    """The packaged digits zip, its images repeated under new names and keys."""
    original = zipfile.ZipFile(io.BytesIO(packaged_archive(DIGITS.data.seed_source, DIGITS.contract)))
    labels = original.read("labels.csv").decode().splitlines()
    images = {name: original.read(name) for name in original.namelist() if name.endswith(".png")}
    out, rows = io.BytesIO(), [labels[0]]
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for copy in range(copies):
            for line in labels[1:]:
                name, key, label = line.split(",")
                archive.writestr(f"c{copy}_{name}", images[name])
                rows.append(f"c{copy}_{name},c{copy}_{key},{label}")
        archive.writestr("labels.csv", "\n".join(rows) + "\n")
    return out.getvalue()


def _bare(data: bytes) -> int:
    """Pillow alone, the least a decode can do: every PNG of the archive read from the zip, opened and
    decoded into an array (no checks, no conversion, nothing stored)."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    count = 0
    for name in archive.namelist():
        if name.endswith(".png"):
            np.asarray(Image.open(io.BytesIO(archive.read(name))))
            count += 1
    return count


def _ingest(path: Path, workdir: Path) -> int:
    report = ingest_file(
        str(path),
        DIGITS.contract,
        batch_id="bench",
        out_path=str(workdir / "accepted.parquet"),
        rejects_path=str(workdir / "rejects.parquet"),
    )
    assert not report.refused and not report.rows_rejected, report.as_metadata()
    return report.rows_accepted


def _timed(fn) -> tuple[int, float]:
    started = time.perf_counter()
    count = fn()
    return count, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aimass-bench-images-") as tmp:
        workdir = Path(tmp)
        path = workdir / "digits_bench.zip"
        path.write_bytes(_archive(args.copies))
        # Interleaved, best of each: on a shared machine a burst of load hits both alike.
        bare, ingest = [], []
        for _ in range(args.repeats):
            bare.append(_timed(lambda: _bare(path.read_bytes())))
            ingest.append(_timed(lambda: _ingest(path, workdir)))
        (n_bare, bare_s), (n_ingest, ingest_s) = (
            min(bare, key=lambda r: r[1]),
            min(ingest, key=lambda r: r[1]),
        )
    assert n_bare == n_ingest, (n_bare, n_ingest)
    bare_rate, ingest_rate = n_bare / bare_s, n_ingest / ingest_s
    print(f"images: {n_bare} digits PNGs (8x8) in one zip, best of {args.repeats}")
    print(f"bare Pillow decode loop   {bare_rate:10,.0f} images/s  ({bare_s:.3f} s)")
    print(f"ingest_file (land+store)  {ingest_rate:10,.0f} images/s  ({ingest_s:.3f} s)")
    print(f"ratio ingest/bare         {ingest_rate / bare_rate:10.2f}x  (goal >= 0.70x)")


if __name__ == "__main__":
    main()
