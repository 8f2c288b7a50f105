{#- The model-ready table: the contract's raw features (ratios are derived inside the model so serving
    computes them identically), the binary target and the batch each row came from. -#}
select
    application_id,
    Seniority,
    Home,
    "Time",
    Age,
    Marital,
    Records,
    Job,
    Expenses,
    Income,
    Assets,
    Debt,
    Amount,
    Price,
    case when status = 'bad' then 1 else 0 end as label,
    batch_id,
    source_file
from {{ ref('stg_credit_applications') }}
