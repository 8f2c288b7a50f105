"""The generated dbt tests (``dbt_contract`` and the ``contract_*`` macros, run by dbt on DuckDB) refuse exactly
the records that ingestion, preprocessing, Great Expectations and the served model refuse.

A dbt run costs ~10 s, so the cases of core/test_contract_rules.py are sampled: each record becomes its own
one-row staging model with its use case's generated tests, and one ``dbt build`` decides every record.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import yaml
from hypothesis import HealthCheck, given, settings

from aimass_pipeline.transformation.dbt_contract import staging_schema
from aimass_pipeline.transformation.project import DBT_DIR
from aimass_pipeline_tests.contract_cases import Case, cases, ingestion_refusals

DBT = str(Path(sys.executable).with_name("dbt"))
SAMPLE = 10


def _sample() -> list[Case]:
    found: list[Case] = []

    @settings(
        max_examples=SAMPLE,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases(max_records=5))
    def collect(case: Case) -> None:
        found.append(case)

    collect()
    return found


def _staged(conn: duckdb.DuckDBPyConnection, case: Case, i: int, name: str) -> None:
    """Record ``i`` as the clean table's one row, typed as the staging model casts it."""
    contract = case.contract
    types = {contract.key: "varchar", contract.target: "varchar"} | {
        c.name: "double" if c.kind in ("int", "float") else "varchar" for c in contract.features
    }
    # The staging model names the target in lower case (dbt_contract.staging_schema).
    names = {c: contract.target.lower() if c == contract.target else c for c in types}
    columns = ", ".join(f'"{names[c]}" {t}' for c, t in types.items())
    conn.execute(f"create table {name} ({columns}, batch_id varchar)")
    row = [case.records[i][c].typed for c in types]
    conn.execute(f"insert into {name} values ({', '.join('?' * (len(row) + 1))})", [*row, "b1"])


def test_generated_dbt_tests_refuse_what_every_other_layer_refuses(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    shutil.copytree(DBT_DIR / "macros" / "tests", project / "macros")
    warehouse = tmp_path / "cases.duckdb"
    (project / "dbt_project.yml").write_text(
        yaml.safe_dump({"name": "contract_cases", "version": "1.0", "profile": "contract_cases"})
    )
    (project / "profiles.yml").write_text(
        yaml.safe_dump(
            {
                "contract_cases": {
                    "target": "dev",
                    "outputs": {"dev": {"type": "duckdb", "path": str(warehouse), "threads": 2}},
                }
            }
        )
    )
    expected, models, schema = set(), {}, []
    sample = _sample()
    with duckdb.connect(str(warehouse)) as conn:
        for n, case in enumerate(sample):
            refused = ingestion_refusals(case)[0]
            for i in case.typed_rows:
                model = f"case{n}_record{i}"
                _staged(conn, case, i, f"{model}_clean")
                (project / "models" / f"{model}.sql").write_text(f"select * from main.{model}_clean")
                schema += staging_schema(case.contract, model)["models"]
                models[model] = (n, i)
                if i in refused:
                    expected.add(model)
    assert models and expected and set(models) - expected, "the sample holds accepted and refused records"
    (project / "models" / "schema.yml").write_text(
        yaml.safe_dump({"version": 2, "models": schema}, allow_unicode=True)
    )

    target = tmp_path / "target"
    args = ["--project-dir", str(project), "--profiles-dir", str(project), "--target-path", str(target)]
    result = subprocess.run([DBT, "build", *args], capture_output=True, text=True, timeout=600)
    results = json.loads((target / "run_results.json").read_text())["results"]
    nodes = json.loads((target / "manifest.json").read_text())["nodes"]
    errors = [r for r in results if r["status"] == "error"]
    assert not errors, [r["message"] for r in errors[:5]] + [result.stdout[-3000:]]
    tests = [r for r in results if r["unique_id"].startswith("test.")]
    assert len(tests) > 3 * len(models)

    refused = {nodes[r["unique_id"]]["attached_node"].split(".")[-1] for r in tests if r["status"] == "fail"}
    wrong = sorted(refused ^ expected)
    assert not wrong, "\n".join(
        f"{m}: dbt {'refuses' if m in refused else 'accepts'} record {models[m][1]} of {sample[models[m][0]]}"
        for m in wrong
    )
