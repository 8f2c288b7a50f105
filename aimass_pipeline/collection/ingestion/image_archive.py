"""A landed zip or tar of PNG/JPEG files plus a labels file, read in memory (nothing is extracted to disk),
as string tables of the contract's raw columns like every other reader.

The archive as a whole is refused (DataContractError, the caller quarantines it) when it is over the size
limit, names a path outside itself, holds a link or device, or has a labels file that cannot be read. One bad
image (or a labels row naming a missing file) is refused alone: it is added to ``refused`` with its rule and
bytes, and the archive's other images flow on. ``_source_row`` is the image's 1-based place in the archive.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import posixpath
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from aimass_pipeline.collection.ingestion.source import Source, fail
from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.core.images import (
    IMAGE_SUFFIXES,
    LIMITS,
    ImageLimits,
    ImageRefused,
    decode_pixels,
    image_spec_of,
    scale,
)

LABEL_FILES = ("labels.csv", "labels.jsonl")
FILE_FIELD = "file"


@dataclass(frozen=True)
class RefusedMember:
    archive: str
    member: str
    rule: str
    message: str
    sha256: str
    data: bytes

    def as_metadata(self) -> dict:
        return {"file": f"{self.archive}!{self.member}", "rule": self.rule, "message": self.message}


def _unsafe(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":")


def _zip_members(source: Source, data: bytes, limits: ImageLimits) -> Iterator[tuple[str, bytes | None]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        _check_names(source, [(i.filename, (i.external_attr >> 16) & 0o170000 == 0o120000) for i in infos])
        if sum(i.file_size for i in infos) > limits.max_archive_bytes:
            fail(source, "archive.too_large", f"unpacks to over {limits.max_archive_bytes} bytes")
        for info in infos:
            if info.is_dir():
                continue
            if info.file_size > limits.max_image_bytes:
                yield info.filename, None
                continue
            with archive.open(info) as handle:
                yield info.filename, handle.read(limits.max_image_bytes + 1)


def _tar_members(source: Source, data: bytes, limits: ImageLimits) -> Iterator[tuple[str, bytes | None]]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        members = archive.getmembers()
        _check_names(source, [(m.name, m.issym() or m.islnk()) for m in members])
        odd = [m.name for m in members if not (m.isfile() or m.isdir())]
        if odd:
            fail(source, "archive.member_type", f"devices or pipes are not images: {odd[:5]}")
        if sum(m.size for m in members) > limits.max_archive_bytes:
            fail(source, "archive.too_large", f"unpacks to over {limits.max_archive_bytes} bytes")
        for member in members:
            if member.isfile():
                too_big = member.size > limits.max_image_bytes
                yield member.name, None if too_big else archive.extractfile(member).read()


def _check_names(source: Source, entries: list[tuple[str, bool]]) -> None:
    traversal = [name for name, _ in entries if _unsafe(name)]
    if traversal:
        fail(source, "archive.traversal", f"members name paths outside the archive: {traversal[:5]}")
    links = [name for name, link in entries if link]
    if links:
        fail(source, "archive.symlink", f"members are links, not files: {links[:5]}")


def archive_members(source: Source, limits: ImageLimits = LIMITS) -> dict[str, bytes | None]:
    """Every file in the archive by its path inside it (None: over the image size limit, not read)."""
    if source.size > limits.max_archive_bytes:
        fail(
            source, "archive.too_large", f"{source.size} bytes, over the limit of {limits.max_archive_bytes}"
        )
    with source.fs.open_input_stream(source.path) as stream:
        data = stream.read()
    try:
        reader = _zip_members if source.suffix == ".zip" else _tar_members
        members = dict(reader(source, data, limits))
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        fail(source, "archive.corrupt", f"not a readable {source.suffix[1:]} archive: {exc}")
    if len(members) > limits.max_members:
        fail(source, "archive.too_many", f"{len(members)} files, over the limit of {limits.max_members}")
    return members


def _labels(source: Source, members: dict[str, bytes | None]) -> tuple[str, list[tuple[int, dict]]]:
    names = [n for n in LABEL_FILES if n in members]
    if not names:
        return "", []
    name, raw = names[0], members[names[0]]
    try:
        text = raw.decode("utf-8")
        if name.endswith(".csv"):
            rows = [(i + 2, r) for i, r in enumerate(csv.DictReader(io.StringIO(text)))]
        else:
            rows = [(i + 1, json.loads(r)) for i, r in enumerate(text.splitlines()) if r.strip()]
    except (AttributeError, UnicodeDecodeError, ValueError) as exc:
        fail(source, "labels.parse", f"{name} cannot be read: {exc}")
    bad = [line for line, r in rows if not isinstance(r, dict) or not r.get(FILE_FIELD)]
    if bad:
        fail(source, "labels.parse", f"{name} rows need a {FILE_FIELD!r} value", line=bad[0])
    return name, rows


def read_archive(
    source: Source, contract: Contract, refused: list, images: list, limits: ImageLimits = LIMITS
) -> Iterator[pa.Table]:
    """The archive's images as one string table of the contract's raw columns plus ``_source_row``;
    ``images`` gets each accepted image's lineage: its key, its path in the archive and its sha256."""
    spec = image_spec_of(contract)
    if spec is None:
        fail(source, "archive.no_image_contract", "the contract declares no image: only tables land here")
    members = archive_members(source, limits)
    labels_name, labels = _labels(source, members)

    def refuse(member: str, rule: str, message: str, data: bytes) -> None:
        refused.append(RefusedMember(source.name, member, rule, message, _sha256(data), data))

    by_file: dict[str, dict] = {}
    for line, row in labels:
        file = str(row[FILE_FIELD])
        if file not in members:
            message = f"{labels_name} line {line} names {file!r}, which is not in the archive"
            refuse(f"{labels_name}#{line}", "labels.missing_file", message, json.dumps(row).encode())
        elif file in by_file:
            message = f"{labels_name} line {line} names {file!r} again"
            refuse(f"{labels_name}#{line}", "labels.duplicate", message, json.dumps(row).encode())
        else:
            by_file[file] = row
    keys, targets, values, places = [], [], [], []
    for place, (member, data) in enumerate(members.items(), start=1):
        if member in LABEL_FILES or posixpath.basename(member).startswith("."):
            continue
        if data is None:
            refuse(member, "image.too_large", f"over the limit of {limits.max_image_bytes} bytes", b"")
            continue
        if not member.lower().endswith(IMAGE_SUFFIXES):
            refuse(member, "image.suffix", f"not a {'/'.join(IMAGE_SUFFIXES)} file", data)
            continue
        try:
            values.append(decode_pixels(data, spec, limits))
        except ImageRefused as exc:
            refuse(member, exc.rule, str(exc), data)
            continue
        row = by_file.get(member, {})
        key = row.get(contract.key)
        keys.append(str(key) if key not in (None, "") else posixpath.splitext(posixpath.basename(member))[0])
        images.append({"key": keys[-1], "archive": source.name, "member": member, "sha256": _sha256(data)})
        label = row.get(contract.target)
        targets.append(None if label in (None, "") else str(label))
        places.append(place)
    if not values:
        reasons = "; ".join(f"{r.member} [{r.rule}]" for r in refused[:5]) or "it holds no image files"
        fail(source, "archive.no_images", f"no image in the archive could be read: {reasons}")
    pixels = scale(np.vstack(values), spec)
    yield _table(contract, keys, targets, pixels, places)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _table(contract: Contract, keys: list, targets: list, pixels: np.ndarray, places: list) -> pa.Table:
    kind = contract.features[0].kind
    columns = [pa.array(keys, pa.string()), pa.array(targets, pa.string())]
    for i in range(pixels.shape[1]):
        column = pixels[:, i].astype(np.int64) if kind == "int" else pixels[:, i]
        columns.append(pa.array(column).cast(pa.string()))
    table = pa.table(columns, names=contract.raw_columns)
    return table.append_column("_source_row", pa.array(places, pa.int64()))
