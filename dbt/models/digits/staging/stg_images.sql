{#- One row per image: its 64 grey levels as numbers, the digit as text, lineage renamed. -#}
select
    cast("image_id" as varchar) as "image_id",
    {%- for name in pixel_columns() %}
    cast("{{ name }}" as double precision) as "{{ name }}",
    {%- endfor %}
    cast("digit" as varchar) as digit,
    cast("_batch_id" as varchar) as batch_id,
    cast("_source_file" as varchar) as source_file
from {{ source('digits_lake', 'clean_images') }}
