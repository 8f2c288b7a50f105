"""Image archives at the landing zone: each bad image is refused with its rule while the good ones flow on;
a bad archive is refused whole. Plain code, small generated archives."""

from __future__ import annotations

import io
import json
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aimass_pipeline.collection.datasets import packaged_archive, packaged_frame
from aimass_pipeline.collection.ingestion.stream import ingest_file
from aimass_pipeline.collection.quarantine import list_quarantined, quarantine_member, retry
from aimass_pipeline.core.errors import DataContractError
from aimass_pipeline.core.images import ImageRefused, decode, encode_png, image_spec_of
from aimass_pipeline.core.specs import load_specs

DIGITS = load_specs()["digits"]
CONTRACT = DIGITS.contract
SPEC = DIGITS.data.image


def _png(seed: int) -> bytes:
    return encode_png(np.random.default_rng(seed).integers(0, 17, size=(8, 8)), SPEC)


def bomb_png() -> bytes:
    """A valid PNG header declaring 100,000 x 100,000 pixels: a few dozen bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def _cmyk_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("CMYK", (8, 8)).save(buffer, "JPEG")
    return buffer.getvalue()


def _zip(path: Path, members: dict[str, bytes], labels: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if labels is not None:
            archive.writestr("labels.csv", labels)
    return path


def _ingest(path: Path, tmp_path: Path):
    return ingest_file(
        str(path),
        CONTRACT,
        batch_id="b1",
        out_path=str(tmp_path / "out.parquet"),
        rejects_path=str(tmp_path / "rejects.parquet"),
    )


def test_each_bad_image_is_refused_with_its_rule_and_the_good_ones_flow_on(tmp_path: Path) -> None:
    good = {"a.png": _png(1), "b.png": _png(2)}
    bad = {
        "truncated.png": _png(3)[:40],
        "bomb.png": bomb_png(),
        "cmyk.jpg": _cmyk_jpeg(),
        "text.png": b"file,image_id\nnot,an image\n",
        "notes.txt": b"hello",
    }
    labels = "file,image_id,digit\na.png,k1,3\nb.png,k2,7\nmissing.png,k3,1\n"
    report = _ingest(_zip(tmp_path / "batch.zip", {**good, **bad}, labels), tmp_path)

    rules = {r.member: r.rule for r in report.refused}
    assert rules == {
        "truncated.png": "image.corrupt",
        "bomb.png": "image.bomb",
        "cmyk.jpg": "image.mode",
        "text.png": "image.not_image",
        "notes.txt": "image.suffix",
        "labels.csv#4": "labels.missing_file",
    }
    accepted = pd.read_parquet(tmp_path / "out.parquet")
    assert accepted["image_id"].tolist() == ["k1", "k2"]
    assert accepted["digit"].tolist() == ["3", "7"]
    assert report.rows_accepted == 2
    # The pixels read back are the values written: the PNG round trip of 0..16 is exact.
    expected = np.random.default_rng(1).integers(0, 17, size=64)
    assert accepted.loc[0, CONTRACT.feature_names].astype(int).tolist() == expected.tolist()

    jail = tmp_path / "quarantine"
    for refused in report.refused:
        quarantine_member(refused, jail)
    listed = {e["member"]: e for e in list_quarantined(jail)}
    assert listed["bomb.png"]["rule"] == "image.bomb"
    assert listed["truncated.png"]["file"] == "batch.zip!truncated.png"
    assert len(listed) == len(rules)
    with pytest.raises(ValueError, match="land it in a new archive"):
        retry(jail, listed["bomb.png"]["quarantined_file"], tmp_path / "landing")


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _tar_with(path: Path, add) -> Path:
    with tarfile.open(path, "w") as archive:
        data = _png(4)
        info = tarfile.TarInfo("ok.png")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
        add(archive)
    return path


def _symlink(archive: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("link.png")
    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive.addfile(info)


def _traversal(archive: tarfile.TarFile) -> None:
    data = _png(5)
    info = tarfile.TarInfo("../../escape.png")
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize(
    ("build", "rule"),
    [
        (lambda p: _tar_with(p.with_suffix(".tar"), _symlink), "archive.symlink"),
        (lambda p: _tar_with(p.with_suffix(".tar"), _traversal), "archive.traversal"),
        (lambda p: _zip(p, {"../evil.png": _png(6)}), "archive.traversal"),
        (lambda p: _zip(p, {"/abs.png": _png(6)}), "archive.traversal"),
        (lambda p: _written(p, b"PK\x03\x04 not really a zip"), "archive.corrupt"),
        (lambda p: _zip(p, {"bad.png": b"nope"}), "archive.no_images"),
        (lambda p: _zip(p, {"x.png": _png(7), "labels.csv": b"file,digit\nx.png,\xff\n"}), "labels.parse"),
    ],
)
def test_a_bad_archive_is_refused_whole(tmp_path: Path, build, rule: str) -> None:
    path = build(tmp_path / "batch.zip")
    with pytest.raises(DataContractError) as caught:
        _ingest(path, tmp_path)
    assert caught.value.rule == rule
    assert not (tmp_path / "out.parquet").exists()


def test_an_archive_over_the_size_limit_is_refused_unread(tmp_path: Path, monkeypatch) -> None:
    from aimass_pipeline.collection.ingestion import image_archive
    from aimass_pipeline.core.images import ImageLimits

    path = _zip(tmp_path / "big.zip", {f"{i}.png": _png(i) for i in range(5)})
    monkeypatch.setattr(image_archive.read_archive, "__defaults__", (ImageLimits(max_archive_bytes=200),))
    with pytest.raises(DataContractError) as caught:
        _ingest(path, tmp_path)
    assert caught.value.rule == "archive.too_large"


def test_the_decoder_refuses_by_pixel_count_before_decoding() -> None:
    with pytest.raises(ImageRefused) as caught:
        decode(bomb_png(), SPEC)
    assert caught.value.rule == "image.bomb"
    # An image of another size is resized to the declared shape.
    big = Image.new("L", (32, 32), color=255)
    buffer = io.BytesIO()
    big.save(buffer, "PNG")
    assert decode(buffer.getvalue(), SPEC).tolist() == [16.0] * 64


def test_digits_lands_as_pngs_that_read_back_as_the_csv_form(tmp_path: Path) -> None:
    assert image_spec_of(CONTRACT) == SPEC
    path = tmp_path / "digits_0001.zip"
    path.write_bytes(packaged_archive(DIGITS.data.seed_source, CONTRACT))
    assert packaged_archive(DIGITS.data.seed_source, CONTRACT) == path.read_bytes()  # seeded: same bytes
    report = _ingest(path, tmp_path)
    assert report.refused == [] and report.rows_rejected == 0
    frame = packaged_frame(DIGITS.data.seed_source, CONTRACT).astype(str)
    landed = pd.read_parquet(tmp_path / "out.parquet")[CONTRACT.raw_columns]
    pd.testing.assert_frame_equal(landed, frame.reset_index(drop=True))
    assert json.loads(json.dumps(report.as_metadata()))["rows_read"] == len(frame)


def test_a_landed_archive_with_bad_images_flows_on_in_one_run_with_each_image_traced(
    aimass_home, tmp_path: Path
) -> None:
    """The sensor takes a zip; the batch's run quarantines its bad images one by one (the check fails, ERROR),
    stores the archive in the raw zone and the good images' rows, with each image's sha256 beside them."""
    from dagster import DagsterInstance, materialize

    from aimass_pipeline.collection.assets import build_collection
    from aimass_pipeline.collection.sensors import landing_tick
    from aimass_pipeline.core.lake import Lake
    from aimass_pipeline.orchestration.resources import LakeIOManager, LakeResource, LandingZoneResource
    from aimass_pipeline.orchestration.use_case import UseCase

    use_case = UseCase(DIGITS)
    landing = aimass_home.landing_dir("digits")
    landing.mkdir(parents=True, exist_ok=True)
    labels = "file,image_id,digit\na.png,k1,3\nb.png,k2,7\ngone.png,k3,1\n"
    _zip(landing / "digits_0002.zip", {"a.png": _png(1), "b.png": _png(2), "bomb.png": bomb_png()}, labels)
    [request] = landing_tick(
        use_case, landing, Lake(aimass_home.lake_url), None, settle_s=0, max_batches=5
    ).requests
    lake = LakeResource(url=aimass_home.lake_url)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(use_case.batches.name, [request.partition_key])
        result = materialize(
            build_collection(use_case),
            instance=instance,
            partition_key=request.partition_key,
            run_config=request.run_config,
            selection=[use_case.key(use_case.raw_batch)],
            raise_on_error=False,
            resources={
                "landing": LandingZoneResource(root=str(aimass_home.landing_root)),
                "lake": lake,
                "io_manager": LakeIOManager(lake=lake),
            },
        )
    assert result.success
    [check] = result.get_asset_check_evaluations()
    assert not check.passed
    jail = aimass_home.quarantine_location("digits")
    assert {e["rule"] for e in list_quarantined(jail)} == {"image.bomb", "labels.missing_file"}
    batch = request.partition_key
    traced = pd.read_parquet(
        Path(aimass_home.lake_url) / "images" / "digits" / f"batch={batch}" / "images.parquet"
    )
    assert traced["key"].tolist() == ["k1", "k2"]
    assert traced["sha256"].tolist()[0] == __import__("hashlib").sha256(_png(1)).hexdigest()
    assert (Path(aimass_home.lake_url) / "raw" / "digits" / f"batch={batch}" / "digits_0002.zip").exists()


def test_a_tar_with_json_lines_labels_and_an_rgb_jpeg_lands(tmp_path: Path) -> None:
    """Tar as well as zip, JSON Lines labels as well as CSV; a colour JPEG of another size is converted to
    the declared grey 8x8; an image the labels do not name keeps its file stem as key and has no label."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), color=(255, 255, 255)).save(buffer, "JPEG", quality=95)
    labels = b'{"file": "photos/white.jpg", "image_id": "w1", "digit": "1"}\n'
    path = tmp_path / "batch.tar"
    with tarfile.open(path, "w") as archive:
        for name, data in (
            ("photos/white.jpg", buffer.getvalue()),
            ("labels.jsonl", labels),
            ("u7.png", _png(9)),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    unlabelled = CONTRACT.__class__(**{**CONTRACT.__dict__, "max_reject_share": 0.9})
    report = ingest_file(
        str(path),
        unlabelled,
        batch_id="b1",
        out_path=str(tmp_path / "out.parquet"),
        rejects_path=str(tmp_path / "rejects.parquet"),
    )
    accepted = pd.read_parquet(tmp_path / "out.parquet")
    assert accepted["image_id"].tolist() == ["w1"]
    assert accepted.loc[0, CONTRACT.feature_names].astype(int).tolist() == [16] * 64
    # The unlabelled image is read, then refused by the contract's target rule (a scoring image, not training).
    rejects = pd.read_parquet(tmp_path / "rejects.parquet")
    assert rejects["rule"].tolist() == ["target.allowed"] and "u7" in rejects["raw"][0]
    assert [i["member"] for i in report.images] == ["photos/white.jpg", "u7.png"]
