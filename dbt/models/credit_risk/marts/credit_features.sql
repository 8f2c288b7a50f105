{#- The model-ready table the training stage reads: key, the contract's raw features (the model derives its
    ratios itself so serving computes them identically), the label in the spec's class order, lineage. -#}
{{ config(pre_hook="{{ delete_rebuilt_batch('application_id', ref('int_credit_applications_enriched')) }}") }}

select
    "application_id",
    "Seniority",
    "Home",
    "Time",
    "Age",
    "Marital",
    "Records",
    "Job",
    "Expenses",
    "Income",
    "Assets",
    "Debt",
    "Amount",
    "Price",
    amount_to_price,
    debt_to_assets,
    {{ class_label('status', ['good', 'bad']) }} as label,
    batch_id,
    source_file
from {{ ref('int_credit_applications_enriched') }}
{{ batch_filter() }}
