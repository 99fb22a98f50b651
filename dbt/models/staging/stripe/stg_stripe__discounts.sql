{#- Discounts, one row per application: a discount attached to a subscription (`discounts`
    array of expanded discount objects, or the legacy single `discount`), and the amount a
    discount took off an invoice line (`discount_amounts`, else `pretax_credit_amounts` of type
    discount). The coupon is read from the discount (`source.coupon` since 2025-09, `coupon`
    before), expanded or as an id resolved against stored coupon objects. -#}
with subscription_discounts as (
    select
        id as subscription_id,
        {{ meterworks.unnest(meterworks.json_path_array('data', 'discounts')) }} as discount_json
    from {{ meterworks.stripe_objects('subscription') }}
    union all
    select
        id as subscription_id,
        {{ meterworks.json_path_json('data', 'discount') }} as discount_json
    from {{ meterworks.stripe_objects('subscription') }}
    where {{ meterworks.json_is_object(meterworks.json_path_json('data', 'discount')) }}
),

subscription_parsed as (
    select
        subscription_id,
        {{ meterworks.json_path_text('discount_json', 'id') }} as discount_id,
        coalesce(
            {{ meterworks.json_path_json('discount_json', 'source.coupon') }},
            {{ meterworks.json_path_json('discount_json', 'coupon') }}
        ) as coupon_json,
        {{ meterworks.json_path_epoch('discount_json', 'start') }} as discount_start,
        {{ meterworks.json_path_epoch('discount_json', 'end') }} as discount_end
    from subscription_discounts
    where {{ meterworks.json_is_object('discount_json') }}
),

coupons as (
    select
        id as coupon_id,
        data as coupon_json
    from {{ meterworks.stripe_objects('coupon') }}
),

subscription_level as (
    select
        'subscription:' || s.subscription_id || ':' || s.discount_id as discount_application_id,
        'subscription' as applies_to,
        s.discount_id,
        s.subscription_id,
        cast(null as {{ dbt.type_string() }}) as invoice_line_id,
        coalesce(
            {{ meterworks.json_path_text('s.coupon_json', 'id') }},
            {{ meterworks.json_string_value('s.coupon_json') }}
        ) as coupon_id,
        coalesce(s.coupon_json, c.coupon_json) as resolved_coupon_json,
        s.discount_start,
        s.discount_end,
        cast(null as {{ dbt.type_bigint() }}) as discount_amount
    from subscription_parsed as s
    left join coupons as c
        on
            {{ meterworks.json_is_string('s.coupon_json') }}
            and {{ meterworks.json_string_value('s.coupon_json') }} = c.coupon_id
),

line_amounts as (
    select
        id as invoice_line_id,
        {{ meterworks.unnest(
            'case when ' ~ meterworks.array_length(meterworks.json_path_array('data', 'discount_amounts'))
            ~ ' > 0 then ' ~ meterworks.json_path_array('data', 'discount_amounts')
            ~ ' else ' ~ meterworks.json_array_where(
                meterworks.json_path_array('data', 'pretax_credit_amounts'), 'type', 'discount'
            ) ~ ' end'
        ) }} as amount_json
    from {{ meterworks.stripe_objects('line_item') }}
),

line_level as (
    select
        'invoice_line:' || invoice_line_id || ':'
        || coalesce(
            {{ meterworks.json_path_text('amount_json', 'discount.id') }},
            {{ meterworks.json_path_text('amount_json', 'discount') }},
            'unknown'
        ) as discount_application_id,
        'invoice_line' as applies_to,
        coalesce(
            {{ meterworks.json_path_text('amount_json', 'discount.id') }},
            {{ meterworks.json_path_text('amount_json', 'discount') }}
        ) as discount_id,
        cast(null as {{ dbt.type_string() }}) as subscription_id,
        invoice_line_id,
        cast(null as {{ dbt.type_string() }}) as coupon_id,
        cast(null as {{ meterworks.type_json() }}) as resolved_coupon_json,
        cast(null as timestamp) as discount_start,
        cast(null as timestamp) as discount_end,
        cast({{ meterworks.json_path_text('amount_json', 'amount') }} as {{ dbt.type_bigint() }}) as discount_amount
    from line_amounts
),

unioned as (
    select * from subscription_level
    union all
    select * from line_level
)

select
    discount_application_id,
    applies_to,
    discount_id,
    subscription_id,
    invoice_line_id,
    coupon_id,
    cast({{ meterworks.json_path_text('resolved_coupon_json', 'percent_off') }} as decimal(9, 4)) as percent_off,
    cast({{ meterworks.json_path_text('resolved_coupon_json', 'amount_off') }} as {{ dbt.type_bigint() }})
        as amount_off,
    lower({{ meterworks.json_path_text('resolved_coupon_json', 'currency') }}) as coupon_currency,
    {{ meterworks.json_path_text('resolved_coupon_json', 'duration') }} as duration,
    cast({{ meterworks.json_path_text('resolved_coupon_json', 'duration_in_months') }} as integer)
        as duration_in_months,
    discount_start,
    discount_end,
    discount_amount
from unioned
