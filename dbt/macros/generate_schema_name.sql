{#- DuckDB (dev): one schema per use case (credit_risk). PostgreSQL (prod): the same, under the target's
    schema as a prefix (aimass_credit_risk), so several warehouses can share one database. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}
    {%- elif target.type == 'duckdb' -%}{{ custom_schema_name | trim }}
    {%- else -%}{{ target.schema }}_{{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
