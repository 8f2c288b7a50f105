"""Create-if-absent writes: the one atomic step two processes storing the same thing agree through.

Locally a file is written under a private name and hard-linked into place (``link`` fails when the name
exists, and a reader never sees it half-written); on S3 a conditional PUT (``If-None-Match: *``), which AWS
and SeaweedFS honour. A store that ignores the condition would let two writers both win: use one that does.
"""

from __future__ import annotations

import errno
import os
import uuid

from fsspec.implementations.local import LocalFileSystem


def create_exclusive(fs: object, path: str, data: bytes) -> bool:
    """Write ``data`` at ``path`` unless something is there already; True when this call created it."""
    if isinstance(fs, LocalFileSystem):
        return _create_local(path, data)
    try:
        fs.pipe_file(path, data, mode="create")  # type: ignore[attr-defined]
    except FileExistsError:
        return False
    except OSError as exc:
        # SeaweedFS answers 412 without the Condition field s3fs maps to FileExistsError.
        if exc.errno == errno.EINVAL and "pre-condition" in str(exc).lower():
            return False
        raise
    return True


def replace_local(path: str, data_writer) -> None:
    """Write a local file under a private name through ``data_writer(handle)``, then rename it into place:
    a concurrent writer of the same bytes never truncates a file a reader already trusts."""
    private = f"{path}.{uuid.uuid4().hex}.part"
    try:
        with open(private, "wb") as handle:
            data_writer(handle)
        os.replace(private, path)
    finally:
        if os.path.exists(private):
            os.unlink(private)


def _create_local(path: str, data: bytes) -> bool:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    private = f"{path}.{uuid.uuid4().hex}.part"
    with open(private, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(private, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(private)
    return True
