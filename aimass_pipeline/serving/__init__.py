"""HTTP serving of a use case's champion model (BentoML service, imported by BentoML, not by Dagster).

The service (``service.py``) in full:

BentoML service answering ``POST /predict`` and ``POST /predict_batch`` with one use case's champion.

Both take ``{"records": [...]}`` and score a record identically. ``/predict`` scores each request on its
own and answers ``{request_id, model_name, model_version, predictions}``: use it for big requests (up to
10,000 records) and at low concurrency. ``/predict_batch`` groups the records of concurrent requests into
one model call (BentoML's adaptive batching, up to 1,000 records within 1 s) and answers a list with one
prediction per record, each naming its model: use it for many small concurrent requests; it adds latency to
a lone request and answers 503 when overloaded past its latency budget. The API is described at
``/docs.json`` (OpenAPI, with a valid request as example); status codes are listed in ``request_limits``.

Which model it starts on is decided at import time, first match wins:

1. the bento arguments ``use_case`` / ``model_tag`` -- ``aimass_pipeline.deployment.bento`` passes them to
   ``bentoml.bentos.build``, which stores them in ``bento.yaml``; ``bentoml serve <bento>`` restores them
   before importing this module, so a built bento always serves exactly the model it was built with;
2. the environment variables ``AIMASS_USE_CASE`` / ``AIMASS_BENTO_MODEL`` (serving from source);
3. nothing else: with neither naming the use case the server exits naming both (no fallback use case);
   the model tag alone defaults to ``<use_case>:latest``.

The arguments win on purpose: a stray ``AIMASS_BENTO_MODEL`` must not make a bento of version 3 serve 5.

The service then follows ``models:/<use_case>@champion`` (``champion.ChampionFollower``): every
``AIMASS_CHAMPION_POLL_S`` seconds (default 10; 0 turns it off) it asks the registry at
``MLFLOW_TRACKING_URI`` and swaps in a newly promoted or rolled-back version without a restart. The bento's
model and the registry must be reachable at start: each is retried ``AIMASS_STARTUP_RETRIES`` times (default
3) with doubling waits, then ``bentoml serve`` exits non-zero naming what it could not reach.

Operations, all read from the server's environment:

- every response carries a ``request_id`` and every prediction a ``prediction_id`` (uuid4 hex), the keys to
  join later outcomes to what was predicted;
- with ``AIMASS_LAKE_URL`` set, predictions are written to ``<lake>/predictions/<use_case>/`` by
  ``aimass_pipeline.core.prediction_log`` every ``AIMASS_PREDICTION_FLUSH_S`` seconds (default 5);
  ``AIMASS_PREDICTION_LOG=off`` turns that off;
- ``/metrics`` (BentoML's Prometheus endpoint) also shows ``aimass_predictions_total`` (by use case, model
  version and label), ``aimass_prediction_probability`` (histogram) and
  ``aimass_prediction_log_dropped_rows_total``;
- with ``AIMASS_API_KEY`` set, every route except the health and metrics probes needs
  ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, else 401.
"""
