"""Write (or check) each dbt use case's generated staging tests: ``python -m
aimass_pipeline.transformation.contract_schema [--check]``."""

from __future__ import annotations

import sys
from pathlib import Path

from aimass_pipeline.core.specs import UseCaseSpec, load_specs
from aimass_pipeline.transformation.dbt_contract import staging_schema_yaml
from aimass_pipeline.transformation.project import DBT_DIR


def contract_files(specs: dict[str, UseCaseSpec], dbt_dir: Path = DBT_DIR) -> dict[Path, str]:
    """Each dbt use case's ``staging/_contract.yml`` and the text it should hold."""
    files = {}
    for spec in specs.values():
        if spec.transformation != "dbt":
            continue
        staging = dbt_dir / "models" / spec.name / "staging"
        models = sorted(staging.glob("stg_*.sql"))
        if len(models) != 1:
            raise FileNotFoundError(f"{staging}: expected exactly one stg_*.sql model, found {models}")
        files[staging / "_contract.yml"] = staging_schema_yaml(spec.contract, models[0].stem)
    return files


def main(argv: list[str]) -> int:
    stale = []
    for path, text in contract_files(load_specs()).items():
        if path.exists() and path.read_text() == text:
            continue
        if "--check" in argv:
            stale.append(str(path))
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(f"out of date with the specs: {stale}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
