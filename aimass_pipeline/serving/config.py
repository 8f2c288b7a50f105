"""How the BentoML server runs the champion service: the ``@bentoml.service`` configuration.

Measured with ``python -m bench.serving`` (numbers in the report of issue 5); what each setting buys is noted
next to it.
"""

from typing import Any

SERVICE_CONFIG: dict[str, Any] = {
    # One process: the raw-app comparison is one process too, and each extra worker loads its own copy of the
    # model, prediction log and champion follower. Scale with replicas or by raising this: on 2 free cores
    # `workers: 2` served ~1.5x the requests/s at concurrency 32 and nothing more at concurrency 1.
    "workers": 1,
    # The inference is CPU-bound Python under the GIL: more threads only queue on it (4 were no faster).
    "threads": 1,
    # BentoML's default INFO access-log line per request: the monitoring reads /metrics and the prediction log.
    "logging": {"access": {"enabled": False}},
    # AIMass configures no trace exporter (sample rate 0), yet the ASGI tracing middleware still builds and
    # discards a span per request: ~15% of a single-row request's CPU. The pattern "/" matches every URL.
    # An operator who exports traces sets `tracing.excluded_urls` back to the probes only.
    "tracing": {"excluded_urls": ["/"]},
    # Recorded in the bento and its Dockerfile too, so a containerised server inherits them.
    "envs": [
        {"name": "BENTOML_DO_NOT_TRACK", "value": "true"},
        # A model loaded from disk would otherwise spread one row over every core and wait on its threads.
        {"name": "OMP_NUM_THREADS", "value": "1"},
    ],
}
