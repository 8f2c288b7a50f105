"""A retired use case: ``retired/<use case>.json`` in the lake, written by `aimass retire` and removed by
`aimass unretire`. In the lake because every part reads it there: the served endpoint (which answers 410 Gone
while it exists), `aimass status`, and `aimass unretire` (which restores what the file says was switched off).
"""

from __future__ import annotations

import json

import fsspec


def _path(lake_url: str, storage_options: dict, use_case: str):
    fs, root = fsspec.core.url_to_fs(lake_url, **storage_options)
    return fs, f"{root.rstrip('/')}/retired/{use_case}.json"


def retired(lake_url: str, storage_options: dict, use_case: str) -> dict | None:
    """The retirement record (who, when, why, the last champion, what was switched off); None when live."""
    fs, path = _path(lake_url, storage_options, use_case)
    try:
        return json.loads(fs.cat_file(path))
    except FileNotFoundError:
        return None


def mark_retired(lake_url: str, storage_options: dict, use_case: str, record: dict) -> None:
    fs, path = _path(lake_url, storage_options, use_case)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    fs.pipe_file(path, json.dumps(record, sort_keys=True, default=str).encode())


def clear_retired(lake_url: str, storage_options: dict, use_case: str) -> None:
    fs, path = _path(lake_url, storage_options, use_case)
    fs.rm(path)
