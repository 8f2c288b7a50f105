"""Landing-sensor tick cost with many stored batches: the first tick of a process (every raw manifest read)
against the ticks after it (manifests are immutable, so the process keeps them), on a local lake and on a
real S3 server (SeaweedFS's `weed mini`, from the dev dependencies, started as the S3 tests start it) with an
s3:// landing zone too.

Run: `python -m bench.landing_tick [--batches 200]`.
"""

import argparse
import tempfile
import time
from pathlib import Path

from aimass_pipeline.collection.landing import landed_file
from aimass_pipeline.collection.sensors import landing_tick
from aimass_pipeline.core import lake as lake_module
from aimass_pipeline.core.lake import Lake
from aimass_pipeline.core.locations import locate
from aimass_pipeline.core.specs import load_specs
from aimass_pipeline.orchestration.use_case import UseCase
from aimass_pipeline_tests.s3.seaweed import weed_mini

WARM_TICKS = 5


def _store_batches(lake: Lake, landing_url: str, options: dict, uc: UseCase, n: int) -> None:
    """n one-file batches in the raw zone, stored exactly as the raw-batch asset stores them."""
    folder = locate(landing_url, options).child(uc.name)
    folder.makedirs()
    for i in range(n):
        name = f"batch_{i:05d}.csv"
        target = folder.child(name)
        data = f"application_id,Status\n{i},good\n".encode()
        target.write_bytes(data)
        landed = landed_file(folder, name, target.sha256(), len(data))
        lake.store_raw_batch(uc.name, landed.batch_id, [landed])
        target.remove()


def _measure(label: str, lake: Lake, landing_url: str, options: dict, uc: UseCase) -> dict:
    folder = locate(landing_url, options).child(uc.name)
    lake_module._MANIFESTS.clear()
    start = time.perf_counter()
    landing_tick(uc, folder, lake, None, settle_s=0)
    cold = time.perf_counter() - start
    warm = []
    for _ in range(WARM_TICKS):
        start = time.perf_counter()
        landing_tick(uc, folder, lake, None, settle_s=0)
        warm.append(time.perf_counter() - start)
    warm_median = sorted(warm)[len(warm) // 2]
    return {"where": label, "cold_s": cold, "warm_s": warm_median, "ratio": warm_median / cold}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=200)
    args = parser.parse_args()
    uc = UseCase(load_specs()["credit_risk"])
    rows = []
    with tempfile.TemporaryDirectory(prefix="aimass-tick-") as tmp:
        root = Path(tmp)
        lake = Lake(str(root / "lake"))
        _store_batches(lake, str(root / "landing"), {}, uc, args.batches)
        rows.append(_measure("local lake, local landing", lake, str(root / "landing"), {}, uc))

        (root / "weed").mkdir()
        with weed_mini(root / "weed") as server:
            lake = Lake(f"s3://{server.bucket}/lake", server.storage_options)
            landing = f"s3://{server.bucket}/landing"
            started = time.perf_counter()
            _store_batches(lake, landing, server.storage_options, uc, args.batches)
            stored_s = time.perf_counter() - started
            rows.append(_measure("S3 lake, S3 landing", lake, landing, server.storage_options, uc))

    print(f"landing tick with {args.batches} stored batches (warm = median of {WARM_TICKS} ticks)")
    print("| where | first tick s | later ticks s | later / first |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['where']} | {row['cold_s']:.3f} | {row['warm_s']:.4f} | {row['ratio']:.3f}x |")
    print(f"storing {args.batches} one-file batches on S3: {stored_s:.1f} s")


if __name__ == "__main__":
    main()
