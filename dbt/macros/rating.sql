{#-
    Rating: what Stripe will invoice for a quantity under a price, in SQL.

    The same rules as the Python reference (meterworks/pricing/engine.py, which cites the Stripe
    documentation); tests/test_rating_sql.py holds the two to the cent on the documented examples
    and on random prices.

    {{ meterworks.rate_usage(quantities_relation, prices_relation, tiers_relation) }} returns a
    select of every quantities row (columns rating_key unique, price_id, quantity) with:
      billed_quantity   decimal(38, 9)   quantity after transform_quantity (divide, round up/down)
      amount_unrounded  decimal(38, 12)  the exact line amount in minor units, shown to 12 places
      amount            bigint           minor units, rounded half-up once per line (Stripe rounds
                                         "on the line item level")
    The relations follow the contracts:
      prices: price_id, currency, billing_scheme ('per_unit'|'tiered'), tiers_mode
              ('graduated'|'volume'), unit_amount_decimal decimal(38, 12), divide_by bigint,
              round_mode ('up'|'down')
      tiers:  price_id, tier_index (1-based, ascending up_to), up_to (whole numbers; null = inf),
              unit_amount_decimal decimal(38, 12), flat_amount_decimal decimal(38, 12)
    amount is null when the price is unknown or invalid, or the quantity is null or negative.
    Quantities are taken at 9 decimal places; amounts overflow past 10^17 minor units.
-#}
{% macro rate_usage(quantities_relation, prices_relation, tiers_relation) -%}
    {{ return(adapter.dispatch('rate_usage', 'meterworks')(quantities_relation, prices_relation, tiers_relation)) }}
{%- endmacro %}

{% macro default__rate_usage(quantities_relation, prices_relation, tiers_relation) -%}
{%- set quantity_type = 'decimal(38, 9)' -%}
{%- set amount_type = 'decimal(38, 12)' -%}
with rating__input as (
    select
        q.rating_key,
        cast(q.quantity as {{ quantity_type }}) as quantity,
        p.price_id,
        p.billing_scheme,
        p.tiers_mode,
        cast(p.unit_amount_decimal as {{ amount_type }}) as unit_amount_decimal,
        cast(p.divide_by as {{ dbt.type_bigint() }}) as divide_by,
        p.round_mode
    from {{ quantities_relation }} as q
    left join {{ prices_relation }} as p
        on q.price_id = p.price_id
),

rating__billed as (
    select
        rating_key,
        price_id,
        billing_scheme,
        tiers_mode,
        unit_amount_decimal,
        cast(
            case
                when price_id is null or quantity < 0 then null
                when divide_by is null then quantity
                when divide_by < 1 then null
                when round_mode = 'down'
                    then {{ meterworks.integer_divide('cast(floor(quantity) as ' ~ dbt.type_bigint() ~ ')', 'divide_by') }}
                when round_mode = 'up'
                    then {{ meterworks.integer_divide('cast(ceil(quantity) as ' ~ dbt.type_bigint() ~ ') + divide_by - 1', 'divide_by') }}
            end
            as {{ quantity_type }}
        ) as billed_quantity
    from rating__input
),

rating__tiers as (
    select
        price_id,
        cast(up_to as {{ quantity_type }}) as up_to,
        cast(
            lag(up_to) over (partition by price_id order by tier_index)
            as {{ quantity_type }}
        ) as lower_bound,
        coalesce(cast(unit_amount_decimal as {{ amount_type }}), 0) as unit_amount_decimal,
        coalesce(cast(flat_amount_decimal as {{ amount_type }}), 0) as flat_amount_decimal
    from {{ tiers_relation }}
),

rating__tiered as (
    {#- Graduated: every tier the quantity has entered prices its own units (the first tier
        always, so its flat amount is due at zero usage). Volume: the one tier holding the
        quantity prices all of it. Tiers that do not apply give null, which sum() skips. #}
    select
        b.rating_key,
        sum(
            case
                when b.tiers_mode = 'graduated'
                    and (t.lower_bound is null or b.billed_quantity > t.lower_bound)
                    then (
                        case
                            when t.up_to is null or b.billed_quantity < t.up_to
                                then b.billed_quantity
                            else t.up_to
                        end
                        - coalesce(t.lower_bound, 0)
                    ) * t.unit_amount_decimal + t.flat_amount_decimal
                when b.tiers_mode = 'volume'
                    and (t.lower_bound is null or b.billed_quantity > t.lower_bound)
                    and (t.up_to is null or b.billed_quantity <= t.up_to)
                    then b.billed_quantity * t.unit_amount_decimal + t.flat_amount_decimal
            end
        ) as amount_unrounded
    from rating__billed as b
    inner join rating__tiers as t
        on b.price_id = t.price_id
    where
        b.billing_scheme = 'tiered'
        and b.billed_quantity is not null
    group by 1
),

rating__rated as (
    select
        b.rating_key,
        b.billed_quantity,
        case
            when b.billing_scheme = 'per_unit'
                then b.billed_quantity * b.unit_amount_decimal
            when b.billing_scheme = 'tiered'
                then tiered.amount_unrounded
        end as amount_unrounded
    from rating__billed as b
    left join rating__tiered as tiered
        on b.rating_key = tiered.rating_key
)

{# Every column of the caller's quantities relation, as given, plus the three rated ones. -#}
select  -- noqa: AM04
    q.*,
    r.billed_quantity,
    cast(r.amount_unrounded as {{ amount_type }}) as amount_unrounded,
    {#- Half-up to a whole minor unit; amounts are never negative, so floor(x + 0.5) is exact. #}
    cast(floor(r.amount_unrounded + 0.5) as {{ dbt.type_bigint() }}) as amount
from {{ quantities_relation }} as q
left join rating__rated as r
    on q.rating_key = r.rating_key
{%- endmacro %}

{#- Whole-number division of two non-negative integers, truncated (no trip through a float). -#}
{% macro integer_divide(numerator, denominator) -%}
    {{ return(adapter.dispatch('integer_divide', 'meterworks')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__integer_divide(numerator, denominator) -%}
    (({{ numerator }}) // ({{ denominator }}))
{%- endmacro %}

{% macro spark__integer_divide(numerator, denominator) -%}
    (({{ numerator }}) div ({{ denominator }}))
{%- endmacro %}

{% macro postgres__integer_divide(numerator, denominator) -%}
    div(({{ numerator }}), ({{ denominator }}))
{%- endmacro %}
