{#- Pixel column names of a rows x cols image, row-major: pixel_<row>_<col>, as the contract's image spec. -#}
{% macro pixel_columns(rows=8, cols=8, prefix='pixel') -%}
    {%- set names = [] -%}
    {%- for r in range(rows) -%}{%- for c in range(cols) -%}
        {%- do names.append(prefix ~ '_' ~ r ~ '_' ~ c) -%}
    {%- endfor -%}{%- endfor -%}
    {{- return(names) -}}
{%- endmacro %}
