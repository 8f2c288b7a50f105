"""A landed file opened for streaming: its filesystem, the faults visible from its first bytes or header,
and where in it (editor line, header = line 1) a fault found later sits."""

from __future__ import annotations

import codecs
import posixpath
from dataclasses import dataclass
from typing import NoReturn

import fsspec
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.core.errors import DataContractError

NULL_TEXT = ["", "NA"]  # what a landed file means by a missing value
# Formats uploaded by mistake under a text name.
BINARY_MAGIC = (b"\x89PNG", b"PK\x03\x04", b"%PDF", b"\xff\xd8\xff", b"GIF8", b"\x1f\x8b", b"PAR1")
SNIFF = 1 << 16
ARCHIVE_SUFFIXES = (".zip", ".tar")  # image files with their labels (ingestion.image_archive)
BLOCK = 1 << 20


@dataclass(frozen=True)
class Source:
    fs: pafs.FileSystem
    path: str
    name: str
    size: int
    suffix: str


def resolve(
    path: str, filesystem: object = None, storage_options: dict | None = None
) -> tuple[pafs.FileSystem, str]:
    """(pyarrow filesystem, path inside it) for a local path, an fsspec URL, or a given filesystem."""
    if isinstance(filesystem, pafs.FileSystem):
        return filesystem, path
    if filesystem is None and "://" not in path:
        return pafs.LocalFileSystem(), posixpath.abspath(path)
    if filesystem is None:
        filesystem, path = fsspec.core.url_to_fs(path, **(storage_options or {}))
    else:
        path = filesystem._strip_protocol(path)
    return pafs.PyFileSystem(pafs.FSSpecHandler(filesystem)), path


def open_source(fs: pafs.FileSystem, path: str) -> Source:
    name = posixpath.basename(path)
    info = fs.get_file_info(path)
    if info.type != pafs.FileType.File:
        # Not the file's fault: nothing to quarantine.
        raise FileNotFoundError(f"no landed file at {path}")
    source = Source(fs, path, name, int(info.size), posixpath.splitext(name)[1].lower())
    _sniff(source)
    return source


def line_at(source: Source, offset: int) -> int:
    """The 1-based line holding byte ``offset``; only called once a file has already failed."""
    newlines, seen = 0, 0
    with source.fs.open_input_stream(source.path) as stream:
        while seen < offset:
            block = stream.read(min(BLOCK, offset - seen))
            if not block:
                break
            newlines += block.count(b"\n")
            seen += len(block)
    return newlines + 1


def fail(
    source: Source, rule: str, message: str, *, line: int | None = None, column: str | None = None
) -> NoReturn:
    raise DataContractError(
        message, source=source.name, rule=rule, column=column, rows=[line] if line else None
    )


def _sniff(source: Source) -> None:
    with source.fs.open_input_stream(source.path) as stream:
        head = stream.read(SNIFF)
    if not head.strip():
        fail(source, "file.empty", "the file is empty")
    if source.suffix in ARCHIVE_SUFFIXES:
        return  # binary by nature; the archive reader refuses what it cannot open
    if source.suffix == ".parquet":
        if not head.startswith(b"PAR1"):
            fail(source, "file.parse", "not a Parquet file (no PAR1 magic)")
        return
    if head.startswith(BINARY_MAGIC) or b"\x00" in head:
        fail(source, "file.binary", f"binary content, not a {source.suffix[1:]} text file")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) == source.size)
    except UnicodeDecodeError as exc:
        fail(
            source,
            "file.encoding",
            f"not UTF-8 text: byte {head[exc.start]:#04x} at offset {exc.start}",
            line=head[: exc.start].count(b"\n") + 1,
        )


def first_bad_utf8(source: Source) -> tuple[int, int]:
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with source.fs.open_input_stream(source.path) as stream:
        while block := stream.read(BLOCK):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                # exc.object may begin with a partial character carried over from the previous block.
                carried = len(exc.object) - len(block)
                return offset + exc.start - carried, exc.object[exc.start]
            offset += len(block)
    return offset, 0


def find_line(source: Source, text: bytes) -> int | None:
    """The line where ``text`` (a row pyarrow could not parse) starts, found by a streamed scan."""
    needle = b"\n" + text.split(b"\n", 1)[0]
    offset, tail = 0, b""
    with source.fs.open_input_stream(source.path) as stream:
        while block := stream.read(BLOCK):
            window = tail + block
            found = window.find(needle)
            if found >= 0:
                return line_at(source, offset - len(tail) + found + 1)
            tail = window[-len(needle) :]
            offset += len(block)
    return None


def check_header(source: Source, names: list[str], contract: Contract, line: int | None = 1) -> None:
    """Fail on duplicate, missing or (unless the contract allows them) unexpected columns; ``line`` is
    where the names are written (a CSV header), None where the format has no such line."""
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        fail(
            source, "columns.duplicate", f"columns {duplicated} appear twice", line=line, column=duplicated[0]
        )
    missing = [c for c in contract.raw_columns if c not in names]
    if missing:
        hint = ""
        if len(names) == 1 and any(sep in names[0] for sep in ";\t|"):
            hint = f"; the header is one column {names[0][:60]!r}: the delimiter must be ','"
        fail(source, "columns.missing", f"missing columns {missing}{hint}", line=line, column=missing[0])
    unexpected = [c for c in names if c not in contract.raw_columns]
    if unexpected and not contract.extra_columns_allowed:
        fail(
            source, "columns.unexpected", f"unexpected columns {unexpected}", line=line, column=unexpected[0]
        )


def row_bound(source: Source, contract: Contract) -> int:
    """An upper bound of the rows in the file, so an excess of rejects can fail before the end."""
    if source.suffix == ".parquet":
        with source.fs.open_input_file(source.path) as handle:
            return pq.ParquetFile(handle).metadata.num_rows
    if source.suffix in ARCHIVE_SUFFIXES:
        return source.size // 64  # an archived PNG with its header takes more than 64 bytes
    # A CSV record needs a delimiter per column (the last one a newline); a JSON line at least "{}\n".
    per_row = len(contract.raw_columns) if source.suffix != ".jsonl" else 3
    return (source.size + 1) // per_row
