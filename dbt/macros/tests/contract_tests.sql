{#- Generic tests. within_ranges and not_null_columns serve the hand-written schema.yml files. The contract_*
    tests are generated from the use case's contract rules (core/rules.py) into
    dbt/models/<use case>/staging/_contract.yml by `python -m aimass_pipeline.transformation.contract_schema`:
    one query per rule kind and model rather than one test per column (64 pixels). A failing row of a
    contract test is the model's row, with the column, the rule (as core/rules.py names it) and the value. -#}

{% test within_ranges(model, ranges) %}
{%- for column, bounds in ranges.items() %}
select '{{ column }}' as column_name, cast("{{ column }}" as varchar) as value,
       'range [{{ bounds[0] }}, {{ bounds[1] }}]' as rule
from {{ model }}
where false
    {%- if bounds[0] is not none %} or "{{ column }}" < {{ bounds[0] }}{% endif %}
    {%- if bounds[1] is not none %} or "{{ column }}" > {{ bounds[1] }}{% endif %}
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{% endtest %}

{% test not_null_columns(model, columns) %}
{%- for column in columns %}
select '{{ column }}' as column_name, cast(null as varchar) as value, 'not_null' as rule
from {{ model }}
where "{{ column }}" is null
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{% endtest %}

{% macro contract_failure(model, column, rule) -%}
select m.*, '{{ column }}' as failed_column, {{ rule }} as failed_rule, cast(m."{{ column }}" as varchar) as failed_value
from {{ model }} m
{%- endmacro %}

{% macro sql_strings(values) -%}
{%- for value in values %}'{{ value | replace("'", "''") }}'{% if not loop.last %}, {% endif %}{% endfor -%}
{%- endmacro %}

{#- key.not_null: preprocessing trims keys, so a blank one arrives empty. -#}
{% test contract_key(model, column) %}
{{ contract_failure(model, column, "'key.not_null'") }}
where m."{{ column }}" is null or m."{{ column }}" = ''
{% endtest %}

{% test contract_target(model, column, classes) %}
{{ contract_failure(model, column, "'target.allowed'") }}
where m."{{ column }}" is null or m."{{ column }}" not in ({{ sql_strings(classes) }})
{% endtest %}

{#- Values arrive in their declared spelling: preprocessing folds the rest (core/rules.py). -#}
{% test contract_categories(model, categories) %}
{%- for column, values in categories.items() %}
{{ contract_failure(model, column, "'category.allowed'") }}
where m."{{ column }}" is not null and m."{{ column }}" not in ({{ sql_strings(values) }})
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{% endtest %}

{#- Every numeric column has both bounds (core.rules.bounds): an infinity is outside them. -#}
{% test contract_ranges(model, ranges) %}
{%- for column, bounds in ranges.items() %}
{{ contract_failure(model, column, "'range.min'") }}
where m."{{ column }}" < cast({{ bounds[0] }} as double precision)
union all
{{ contract_failure(model, column, "'range.max'") }}
where m."{{ column }}" > cast({{ bounds[1] }} as double precision)
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{% endtest %}

{% test contract_whole(model, columns) %}
{%- for column in columns %}
{{ contract_failure(model, column, "'type.integer'") }}
where m."{{ column }}" <> floor(m."{{ column }}")
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{% endtest %}

{% test contract_required(model, columns) %}
{%- for column in columns %}
{{ contract_failure(model, column, "'not_null'") }}
where m."{{ column }}" is null
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{% endtest %}

{#- Characters, as core.rules counts them after NFC; length() counts characters in DuckDB and PostgreSQL. -#}
{% test contract_text_length(model, lengths) %}
{%- for column, limit in lengths.items() %}
{{ contract_failure(model, column, "'text.max_chars'") }}
where length(m."{{ column }}") > {{ limit }}
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{% endtest %}
