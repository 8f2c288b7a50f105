"""Two processes storing the same landed batch at once store it once, and batch orders never collide
(issue 11, fault 6): the landing sensor's run and `aimass ingest` both take a file that just settled."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aimass_pipeline.collection.landing import LandedFile
from aimass_pipeline.core.lake import Lake

RACERS = 6
SIZE = 200_000_000


def _landed(folder: Path, name: str, text: str) -> LandedFile:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return LandedFile(name, folder / name, hashlib.sha256(text.encode()).hexdigest(), len(text))


def _race(make_lake, jobs: list[tuple[str, list[LandedFile]]]) -> list[tuple[dict, bool]]:
    """Every job stored by its own thread with its own Lake (as separate processes hold), all let go at once."""
    start = threading.Barrier(len(jobs))

    def store(job: tuple[str, list[LandedFile]]) -> tuple[dict, bool]:
        lake = make_lake()
        start.wait()
        return lake.store_raw_batch("uc", *job)

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(store, jobs))


def _assert_once(lake: Lake, results: list[tuple[dict, bool]], batch_ids: list[str]) -> None:
    for batch_id in set(batch_ids):
        newly = [new for (manifest, new) in results if manifest["batch_id"] == batch_id]
        assert newly.count(True) == 1, (
            f"batch {batch_id} newly stored by {newly.count(True)} of {len(newly)} racers"
        )
        orders = {manifest["ingested_order"] for manifest, _ in results if manifest["batch_id"] == batch_id}
        assert len(orders) == 1, f"batch {batch_id} was given orders {sorted(orders)}"
    stored = lake.raw_batches("uc")
    assert sorted(m["batch_id"] for m in stored) == sorted(set(batch_ids))
    orders = [m["ingested_order"] for m in stored]
    assert orders == sorted(set(orders)), f"two batches share an ingested order: {orders}"


def test_racers_on_one_batch_store_it_once_and_two_batches_get_two_orders(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    text = "a,b\n" + "".join(f"{i},{i}\n" for i in range(20_000))
    one, two = _landed(landing, "one.csv", text), _landed(landing, "two.csv", text + "1,1\n")
    jobs = [("b1", [one])] * RACERS + [("b2", [two])] * RACERS
    results = _race(lambda: Lake(str(tmp_path / "lake")), jobs)
    lake = Lake(str(tmp_path / "lake"))
    _assert_once(lake, results, [batch_id for batch_id, _ in jobs])
    assert lake.read_bytes("raw", "uc", "batch=b1", "one.csv") == text.encode()
    # A later store of a stored batch changes nothing.
    assert lake.store_raw_batch("uc", "b1", [one]) == (lake.raw_manifest("uc", "b1"), False)


def test_a_writer_killed_mid_write_leaves_no_partial_file(tmp_path: Path) -> None:
    """SIGKILL while an asset is being written (as in `aimass run` killed mid-step) leaves the previous bytes
    or the whole new ones at the asset's path, never a truncated file."""
    lake = Lake(str(tmp_path / "lake"))
    lake.write_bytes(b"old", "assets", "a.pkl")
    target = Path(lake.path("assets", "a.pkl"))
    code = (
        "from aimass_pipeline.core.lake import Lake\n"
        f"Lake({str(tmp_path / 'lake')!r}).write_bytes(b'n' * {SIZE}, 'assets', 'a.pkl')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 120
    # Kill as soon as any new byte is on disk: in the asset's file or in a private file beside it.
    while not any(p.stat().st_size > 3 for p in target.parent.iterdir() if p.exists()):
        assert proc.poll() is None and time.monotonic() < deadline, (
            "the writer finished before it could be killed"
        )
        time.sleep(0.001)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    size = target.stat().st_size
    assert size in (3, SIZE), (
        f"a killed writer left a {size}-byte asset (neither the old 3 nor the new {SIZE})"
    )


def test_processes_racing_on_one_file_store_one_batch(tmp_path: Path) -> None:
    """Separate processes (the sensor's run worker, `aimass ingest`) store the same landed file at once."""
    landing = tmp_path / "landing"
    # 20 MB: copying takes long enough that every racer is inside the store at once.
    text = "a,b\n" + "1,2\n" * 5_000_000
    one = _landed(landing, "one.csv", text)
    go = tmp_path / "go"
    code = (
        "import json, time\n"
        "from pathlib import Path\n"
        "from aimass_pipeline.collection.landing import LandedFile\n"
        "from aimass_pipeline.core.lake import Lake\n"
        f"landed = LandedFile('one.csv', Path({str(one.path)!r}), {one.sha256!r}, {one.size})\n"
        f"lake = Lake({str(tmp_path / 'lake')!r})\n"
        f"while not Path({str(go)!r}).exists(): time.sleep(0.005)\n"
        "manifest, new = lake.store_raw_batch('uc', 'b1', [landed])\n"
        "print(json.dumps([manifest['ingested_order'], new]))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(RACERS)
    ]
    time.sleep(3)  # every racer imported and waiting
    go.touch()
    results = [json.loads(proc.communicate(timeout=120)[0]) for proc in procs]
    assert [new for _, new in results].count(True) == 1, f"newly stored by several processes: {results}"
    assert {order for order, _ in results} == {0}, results
    lake = Lake(str(tmp_path / "lake"))
    assert [m["batch_id"] for m in lake.raw_batches("uc")] == ["b1"]
    assert lake.read_bytes("raw", "uc", "batch=b1", "one.csv") == text.encode()


def test_a_racer_whose_claim_listing_was_stale_does_not_claim_a_stored_batch_again(tmp_path: Path) -> None:
    """The race CI caught (stop 18): a racer listed no claims, then counted the manifests its rivals had
    meanwhile written under their claims, and took that count as a fresh order for a batch already claimed."""
    landing = tmp_path / "landing"
    one = _landed(landing, "one.csv", "a,b\n1,1\n")
    two = _landed(landing, "two.csv", "a,b\n2,2\n")
    lake = Lake(str(tmp_path / "lake"))
    assert lake.store_raw_batch("uc", "b1", [one])[1] and lake.store_raw_batch("uc", "b2", [two])[1]

    class StaleFirstListing(Lake):
        listings = 0

        def _orders(self, use_case: str) -> dict[int, str]:
            self.listings += 1
            return {} if self.listings == 1 else super()._orders(use_case)

    racer = StaleFirstListing(str(tmp_path / "lake"))
    assert racer.claim_order("uc", "b1") == (0, False)
    assert sorted(lake._orders("uc").values()) == ["b1", "b2"]
