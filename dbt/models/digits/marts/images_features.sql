{#- The model-ready table the training stage reads: key, the contract's 64 pixel columns (the model
    families read them as the image), intensity aggregates, the label in the spec's class order, lineage. -#}
{{ config(pre_hook="{{ delete_rebuilt_batch('image_id', ref('int_images_intensity')) }}") }}

select
    "image_id",
    {%- for name in pixel_columns() %}
    "{{ name }}",
    {%- endfor %}
    {%- for r in range(8) %}
    row_{{ r }}_mean,
    {%- endfor %}
    {%- for c in range(8) %}
    col_{{ c }}_mean,
    {%- endfor %}
    lit_share,
    {{ class_label('digit', ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) }} as label,
    batch_id,
    source_file
from {{ ref('int_images_intensity') }}
{{ batch_filter() }}
