"""Names and links of the MLflow store that need no MLflow import (the fast CLI reads them): the code-version
tag, a store URI with its password hidden, and a run's link in the MLflow UI. core/registry.py re-exports them."""

from __future__ import annotations

import re

CODE_VERSION_TAG = "aimass.code_version"


def redacted(uri: str) -> str:
    """The store URI without its password, for messages and logs (a prod URI holds the PostgreSQL one)."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", uri)


def run_url(
    tracking_uri: str, experiment_id: str, run_id: str, ui_base: str = "http://127.0.0.1:5000"
) -> str:
    """Link into the MLflow UI that ``aimass up`` starts (a tracking server's own URL when it is one)."""
    base = tracking_uri if tracking_uri.startswith("http") else ui_base
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
