{#- Applications with derived ratios, null-safe (a zero or missing denominator gives null). The model
    pipeline derives the same ratios from raw columns at serving time; these are for analysis. -#}
{{ config(pre_hook="{{ delete_rebuilt_batch('application_id', ref('stg_credit_applications')) }}") }}

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
    {{ safe_ratio('"Amount"', '"Price"') }} as amount_to_price,
    {{ safe_ratio('"Debt"', '"Assets"') }} as debt_to_assets,
    {{ safe_ratio('"Expenses"', '"Income"') }} as expenses_to_income,
    {{ safe_ratio('"Amount"', '"Time"') }} as amount_per_month,
    status,
    batch_id,
    source_file
from {{ ref('stg_credit_applications') }}
{{ batch_filter() }}
