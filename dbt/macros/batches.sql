{#- A batch (`_batch_id` in the lake, `batch_id` here) is the unit of rebuild: with `--vars '{batch_id: X}'`
    an incremental model replaces batch X's rows only; without it, every batch's rows are replaced. -#}

{% macro selected_batch() -%}
    {{- return(var('batch_id', '') | string | trim) -}}
{%- endmacro %}

{% macro batch_literal() -%}
    '{{ selected_batch() | replace("'", "''") }}'
{%- endmacro %}

{#- The where clause limiting an incremental model's input to the batch being rebuilt. -#}
{% macro batch_filter(column='batch_id') -%}
    {%- if is_incremental() and selected_batch() != '' -%}
    where {{ column }} = {{ batch_literal() }}
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook: before rebuilding batch X, drop X's old rows (rows since removed from X included) and rows of
    older batches whose key X lands again: the preprocessing step lets the newest batch win a key. -#}
{% macro delete_rebuilt_batch(key, upstream) -%}
    {%- if is_incremental() and selected_batch() != '' -%}
    delete from {{ this }}
    where batch_id = {{ batch_literal() }}
       or "{{ key }}" in (select "{{ key }}" from {{ upstream }} where batch_id = {{ batch_literal() }})
    {%- endif -%}
{%- endmacro %}

{#- The class name to the label id in the spec's class order (label i is classes[i]); unknown gives null,
    which the mart's not_null test reports. -#}
{% macro class_label(column, classes) -%}
    case {{ column }}
    {%- for name in classes %} when '{{ name }}' then {{ loop.index0 }}{% endfor %}
    end
{%- endmacro %}

{#- Null-safe ratio: a missing or zero denominator gives null, never an error or infinity. -#}
{% macro safe_ratio(numerator, denominator) -%}
    cast({{ numerator }} as double precision) / nullif(cast({{ denominator }} as double precision), 0)
{%- endmacro %}
