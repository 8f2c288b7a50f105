"""`aimass shadow` and `aimass canary`: a registered version scores a share of the live traffic silently
(shadow) or answers it (canary, judged by the sequential test its command registers). Running services pick the
change up at their next poll of the lake (``AIMASS_CHAMPION_POLL_S``)."""

from __future__ import annotations

import argparse
import json

from aimass_pipeline.settings import load_settings


def add_rollout_parsers(sub: argparse._SubParsersAction) -> None:
    shadow = sub.add_parser(
        "shadow",
        help="score a share of the requests with VERSION too, off the request path; clients see only the champion",
    )
    shadow.add_argument("use_case")
    shadow.add_argument("version", nargs="?", help="the registered version (omit with --stop)")
    shadow.add_argument(
        "--share", type=float, default=100.0, help="percent of entities shadowed (default 100)"
    )
    shadow.add_argument("--stop", action="store_true", help="stop the running shadow")
    shadow.set_defaults(func="cmd_shadow")

    canary = sub.add_parser(
        "canary",
        help="route a share of the entities to VERSION; a sensor promotes or stops it by a sequential test",
        description="Route --share percent of the entities (by a stable hash) to VERSION. The decision rule is "
        "registered now, before any traffic: the canary sensor promotes VERSION when the mSPRT concludes it is "
        "better, and stops the canary when it concludes worse, a guard is breached, or --max-samples labelled "
        "canary predictions bring no conclusion.",
    )
    canary.add_argument("use_case")
    canary.add_argument("version", nargs="?", help="the registered version (omit with --stop)")
    canary.add_argument("--share", type=float, default=10.0, help="percent of entities (default 10)")
    canary.add_argument("--metric", choices=["brier", "log_loss", "error"], default="brier")
    canary.add_argument(
        "--min-effect", type=float, default=0.02, help="smallest loss difference worth detecting"
    )
    canary.add_argument("--alpha", type=float, default=0.05)
    canary.add_argument("--max-samples", type=int, default=2000, help="labelled canary predictions at most")
    canary.add_argument(
        "--stop", action="store_true", help="stop the running canary (the champion keeps serving)"
    )
    canary.add_argument("--json", action="store_true", help="print the state as JSON")
    canary.set_defaults(func="cmd_canary")


def _context(use_case: str, version: str | None, stop: bool):
    from aimass_pipeline.cli.common import spec_or_exit
    from aimass_pipeline.core.lake import Lake

    settings = load_settings().prepare()
    spec_or_exit(settings.use_case_specs(), use_case, settings.spec_errors())
    if not stop and version is None:
        raise SystemExit(f"aimass: name the version to roll out for {use_case}, or pass --stop")
    return settings, Lake(settings.lake_url, settings.storage_options)


def _champion_checked(settings, use_case: str, version: str) -> str | None:
    """The champion's version; exits 1 with a message when ``version`` is not registered."""
    from mlflow.exceptions import MlflowException

    from aimass_pipeline.core.registry import champion_version, registry_client

    try:
        client = registry_client(settings.mlflow_tracking_uri)
        client.get_model_version(use_case, str(version))
    except FileNotFoundError as exc:  # a home that never trained: no registry yet
        raise SystemExit(f"aimass: {exc}") from exc
    except MlflowException as exc:
        raise SystemExit(f"aimass: {use_case} has no registered version {version}: {exc.message}") from exc
    champion = champion_version(client, use_case)
    return None if champion is None else str(champion.version)


def _share(value: float) -> float:
    if not 0 < value <= 100:
        raise SystemExit(f"aimass: --share must be in (0, 100], got {value}")
    return value


def cmd_shadow(args: argparse.Namespace) -> int:
    from aimass_pipeline.core import rollout

    settings, lake = _context(args.use_case, args.version, args.stop)
    try:
        if args.stop:
            rollout.stop_shadow(lake, args.use_case, reason="operator")
            print(f"{args.use_case}: shadow stopped; services drop it at their next poll", flush=True)
            return 0
        share = _share(args.share)
        champion = _champion_checked(settings, args.use_case, args.version)
        rollout.start_shadow(lake, args.use_case, str(args.version), share, champion)
    except LookupError as exc:
        raise SystemExit(f"aimass: {exc}") from exc
    print(
        f"{args.use_case}: version {args.version} shadows {args.share:g} % of the entities next to champion "
        f"{champion}; pairs logged under predictions_shadow/ (see the shadow_report asset)",
        flush=True,
    )
    return 0


def cmd_canary(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from aimass_pipeline.core import rollout

    settings, lake = _context(args.use_case, args.version, args.stop)
    try:
        if args.stop:
            state = rollout.end_canary(lake, args.use_case, "stop", "operator stopped it")
        else:
            rule = rollout.DecisionRule(
                metric=args.metric, min_effect=args.min_effect, alpha=args.alpha, max_samples=args.max_samples
            )
            share = _share(args.share)
            champion = _champion_checked(settings, args.use_case, args.version)
            if champion is None:
                raise SystemExit(f"aimass: {args.use_case} has no champion to compare a canary against")
            state = rollout.start_canary(lake, args.use_case, str(args.version), share, champion, rule)
    except (LookupError, ValueError, ValidationError) as exc:
        raise SystemExit(f"aimass: {exc}") from exc
    if args.json:
        print(json.dumps(rollout.serving_summary(state), indent=2, sort_keys=True))
    elif args.stop:
        print(f"{args.use_case}: canary stopped; the champion answers everything at the services' next poll")
    else:
        rule = state.canary.rule  # type: ignore[union-attr]
        print(
            f"{args.use_case}: version {args.version} answers {args.share:g} % of the entities against champion "
            f"{champion}; rule registered: {rule.metric}, min effect {rule.min_effect}, alpha {rule.alpha}, "  # type: ignore[union-attr]
            f"at most {rule.max_samples} labelled canary predictions (the {args.use_case}_canary_sensor decides)",  # type: ignore[union-attr]
            flush=True,
        )
    return 0
