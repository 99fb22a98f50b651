select
    customer_id,
    name as customer_name,
    plan_code,
    coalesce(timezone, 'UTC') as timezone
from {{ source('meterworks', 'catalog_customers') }}
