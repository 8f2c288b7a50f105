"""The champion rule, on any store of registry aliases: a promotion is a compare-and-set on the champion the
decision read, the former champion keeps ``previous``, and a rollback swaps the two. core/registry.py runs it
on MLflow's client; the CLI on the embedded SQLite registry directly (cli/registry_writes.py), so a promote
does not pay MLflow's imports. No MLflow import here."""

from __future__ import annotations

from typing import Protocol

CHAMPION = "champion"
PREVIOUS = "previous"
# A version's tag naming who made it champion: "operator", "canary"; a gate's promotion leaves it unset.
PROMOTED_BY = "promoted_by"


class PromotionConflict(RuntimeError):
    """The champion moved between the read a promotion decided on and the promotion: the later decision loses."""


class Aliases(Protocol):
    """A registry's aliases: which version of a registered model an alias points at, and moving it."""

    def version_of(self, name: str, alias: str) -> str | None: ...

    def point(self, name: str, alias: str, version: str) -> None: ...


def compare_and_set(aliases: Aliases, name: str, version: str, want: str | None, check: bool) -> str | None:
    """Point ``champion`` at ``version`` if it is still at ``want`` (when ``check``); the former champion keeps
    ``previous``. Returns the former champion. Every call converges on the same two aliases, so a retry after a
    half-done move finishes it rather than moving again."""
    now = aliases.version_of(name, CHAMPION)
    if now == version:
        # Already champion: a retry after the champion moved but before we heard back, or a re-run.
        if want is not None and want != version and aliases.version_of(name, PREVIOUS) != want:
            aliases.point(name, PREVIOUS, want)
        return want if check else aliases.version_of(name, PREVIOUS)
    if check and now != want:
        raise PromotionConflict(
            f"{name}: champion moved from version {want or 'none'} to version {now or 'none'} while version "
            f"{version} was being decided on; version {version} was NOT promoted (the later decision loses: "
            f"champion stays version {now or 'none'})"
        )
    if now is not None:
        aliases.point(name, PREVIOUS, now)
    aliases.point(name, CHAMPION, version)
    return now


def rollback_move(aliases: Aliases, name: str) -> tuple[str, str]:
    """What a rollback does: (the version to promote, the champion it must still replace), i.e. ``previous``
    and ``champion``; LookupError when either is missing."""
    current, previous = aliases.version_of(name, CHAMPION), aliases.version_of(name, PREVIOUS)
    if previous is None:
        raise LookupError(f"{name}: no version has alias {PREVIOUS!r}, nothing to roll back to")
    if current is None:
        raise LookupError(f"{name}: no champion to roll back from")
    return previous, current
