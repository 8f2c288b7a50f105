{#- The image array as a feature table: the pixels plus per-row and per-column mean intensity and the
    share of lit pixels (grey level above half of 16), which summarise stroke position and thickness. -#}
{{ config(pre_hook="{{ delete_rebuilt_batch('image_id', ref('stg_images')) }}") }}

select
    "image_id",
    {%- for name in pixel_columns() %}
    "{{ name }}",
    {%- endfor %}
    {%- for r in range(8) %}
    ({% for c in range(8) %}"pixel_{{ r }}_{{ c }}"{% if not loop.last %} + {% endif %}{% endfor %}) / 8.0
        as row_{{ r }}_mean,
    {%- endfor %}
    {%- for c in range(8) %}
    ({% for r in range(8) %}"pixel_{{ r }}_{{ c }}"{% if not loop.last %} + {% endif %}{% endfor %}) / 8.0
        as col_{{ c }}_mean,
    {%- endfor %}
    ({% for name in pixel_columns() %}case when "{{ name }}" > 8 then 1 else 0 end{% if not loop.last %} + {% endif %}{% endfor %}) / 64.0
        as lit_share,
    digit,
    batch_id,
    source_file
from {{ ref('stg_images') }}
{{ batch_filter() }}
