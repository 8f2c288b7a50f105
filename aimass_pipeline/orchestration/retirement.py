"""Switching a use case's sensors and schedules off in the Dagster instance, and back on.

The state is stored by instigator selector (code location, repository, name), which is what the daemon looks
up: a repository loaded in this process under the workspace's location name (``aimass``) addresses the same
sensors the daemon of `aimass up` ticks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import DagsterInstance

LOCATION = "aimass"  # workspace.yaml's location_name


@contextmanager
def loaded_repository(
    instance: DagsterInstance, module: str = "aimass_pipeline.definitions", location: str = LOCATION
) -> Iterator:
    """The code location's one repository, loaded in this process."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin  # noqa: PLC2701 - what `dagster` CLI uses
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin  # noqa: PLC2701

    origin = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name=module), location_name=location)
    with origin.create_location(instance) as code_location:
        yield next(iter(code_location.get_repositories().values()))


def _owned(name: str, use_case: str, others: list[str]) -> bool:
    # "credit" must not take "credit_risk"'s sensors: a longer use-case name that also matches wins.
    longer = [o for o in others if o != use_case and o.startswith(f"{use_case}_")]
    return name.startswith(f"{use_case}_") and not any(name.startswith(f"{o}_") for o in longer)


def instigators(repo, use_case: str, use_cases: list[str]) -> list:
    """The use case's sensors and schedules in ``repo``."""
    found = [*repo.get_sensors(), *repo.get_schedules()]
    return [i for i in found if _owned(i.name, use_case, use_cases)]


def running(instance: DagsterInstance, instigator) -> bool:
    stored = instance.get_instigator_state(instigator.get_remote_origin_id(), instigator.selector_id)
    return instigator.get_current_instigator_state(stored).is_running


def switch_off(instance: DagsterInstance, repo, use_case: str, use_cases: list[str]) -> list[str]:
    """Stop every running sensor and schedule of the use case; the names of those stopped."""
    stopped = []
    sensors = {s.name for s in repo.get_sensors()}
    for item in instigators(repo, use_case, use_cases):
        if not running(instance, item):
            continue
        if item.name in sensors:
            instance.stop_sensor(item.get_remote_origin_id(), item.selector_id, item)
        else:
            instance.stop_schedule(item.get_remote_origin_id(), item.selector_id, item)
        stopped.append(item.name)
    return stopped


def switch_on(instance: DagsterInstance, repo, names: list[str]) -> list[str]:
    """Start again what ``switch_off`` stopped (by name); the names started."""
    started = []
    for name in names:
        if repo.has_sensor(name):
            instance.start_sensor(repo.get_sensor(name))
        elif repo.has_schedule(name):
            instance.start_schedule(repo.get_schedule(name))
        else:
            continue  # gone from the code since: nothing to restore
        started.append(name)
    return started
