{#- The lake's clean table with warehouse types and the lineage columns renamed; quoted names keep the
    contract's spelling on PostgreSQL, which folds unquoted names to lower case. -#}
select
    cast("application_id" as varchar) as "application_id",
    cast("Seniority" as double precision) as "Seniority",
    cast("Home" as varchar) as "Home",
    cast("Time" as double precision) as "Time",
    cast("Age" as double precision) as "Age",
    cast("Marital" as varchar) as "Marital",
    cast("Records" as varchar) as "Records",
    cast("Job" as varchar) as "Job",
    cast("Expenses" as double precision) as "Expenses",
    cast("Income" as double precision) as "Income",
    cast("Assets" as double precision) as "Assets",
    cast("Debt" as double precision) as "Debt",
    cast("Amount" as double precision) as "Amount",
    cast("Price" as double precision) as "Price",
    cast("Status" as varchar) as status,
    cast("_batch_id" as varchar) as batch_id,
    cast("_source_file" as varchar) as source_file
from {{ source('credit_risk_lake', 'clean_applications') }}
