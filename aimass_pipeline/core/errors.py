"""Errors that name the file, row, column and rule that failed."""

from __future__ import annotations


class DataContractError(ValueError):
    """A landed file or table breaks its use case's data contract."""

    def __init__(
        self,
        message: str,
        *,
        source: str,
        rule: str,
        column: str | None = None,
        rows: list[int] | None = None,
    ) -> None:
        self.source = source
        self.rule = rule
        self.column = column
        self.rows = rows or []
        where = f"{source}"
        if column:
            where += f", column {column!r}"
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:10])
            more = f" (+{len(self.rows) - 10} more)" if len(self.rows) > 10 else ""
            where += f", row(s) {shown}{more}"
        super().__init__(f"{where}: [{rule}] {message}")
