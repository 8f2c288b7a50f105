"""Rollout: what happens to a registered version between the gate and full traffic.

A shadow scores live requests silently next to the champion (its rows in ``predictions_shadow/``, paired by
``prediction_id``); a canary answers a hashed share of the entities and is promoted or stopped by a sequential
test (mSPRT, ``sequential``) registered before it started, plus guard metrics (``canary``). The services read
the serving state from the lake (``core.rollout``, ``serving.arms``); the Dagster shell here reports
(``shadow_report``, ``canary_decision`` with its plot) and decides (``canary_sensor``).
"""
