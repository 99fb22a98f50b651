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

rating__tier_units as (
    {#- Graduated: every tier the quantity has entered prices its own units (the first tier
        always, so its flat amount is due at zero usage). Volume: the one tier holding the
        quantity prices all of it. Tiers that do not apply get null units. The difference is
        taken in decimal(36, 9): Spark would type decimal(38, 9) - decimal(38, 9) with 8 places. #}
    select
        b.rating_key,
        t.unit_amount_decimal,
        t.flat_amount_decimal,
        case
            when b.tiers_mode = 'graduated'
                and (t.lower_bound is null or b.billed_quantity > t.lower_bound)
                then cast(
                        cast(least(b.billed_quantity, coalesce(t.up_to, b.billed_quantity)) as decimal(36, 9))
                        - cast(coalesce(t.lower_bound, 0) as decimal(36, 9))
                        as {{ quantity_type }}
                    )
            when b.tiers_mode = 'volume'
                and (t.lower_bound is null or b.billed_quantity > t.lower_bound)
                and (t.up_to is null or b.billed_quantity <= t.up_to)
                then b.billed_quantity
        end as tier_units
    from rating__billed as b
    inner join rating__tiers as t
        on b.price_id = t.price_id
    where
        b.billing_scheme = 'tiered'
        and b.billed_quantity is not null
),

rating__tiered as (
    {#- sum() skips the tiers that do not apply (null units). #}
    select
        rating_key,
        sum(
            {{ meterworks.exact_amount('tier_units', 'unit_amount_decimal') }}
            + {{ meterworks.exact_flat_amount('flat_amount_decimal') }}
        ) as amount_exact
    from rating__tier_units
    group by 1
),

rating__rated as (
    select
        b.rating_key,
        b.billed_quantity,
        case
            when b.billing_scheme = 'per_unit'
                then {{ meterworks.exact_amount('b.billed_quantity', 'b.unit_amount_decimal') }}
            when b.billing_scheme = 'tiered'
                then tiered.amount_exact
        end as amount_exact
    from rating__billed as b
    left join rating__tiered as tiered
        on b.rating_key = tiered.rating_key
)

{# Every column of the caller's quantities relation, as given, plus the three rated ones. -#}
select  -- noqa: AM04
    q.*,
    r.billed_quantity,
    {{ meterworks.exact_amount_decimal('r.amount_exact') }} as amount_unrounded,
    {{ meterworks.exact_amount_minor_units('r.amount_exact') }} as amount
from {{ quantities_relation }} as q
left join rating__rated as r
    on q.rating_key = r.rating_key
{%- endmacro %}

{#- quantity x unit amount (at most 9 and 12 decimal places), exactly, in a form each engine keeps
    exact through further products and sums; exact_flat_amount() puts a 12-place amount in the
    same form, exact_amount_decimal() and exact_amount_minor_units() read it out.

    DuckDB (and PostgreSQL): decimal(38, 9) x decimal(38, 12) is an exact decimal(38, 21).
    Spark types that product decimal(38, 6), rounding away the places a half-cent decision needs
    (15195.833333333 x 0.6 = 9117.4999999998 became 9117.5); there the amount is carried as a
    whole number of 1e-21 minor units in decimal(38, 0), which integer products and sums keep
    exact. Both overflow past 10^17 minor units. -#}
{% macro exact_amount(quantity_expression, unit_amount_expression) -%}
    {{ return(adapter.dispatch('exact_amount', 'meterworks')(quantity_expression, unit_amount_expression)) }}
{%- endmacro %}

{% macro default__exact_amount(quantity_expression, unit_amount_expression) -%}
    ({{ quantity_expression }}) * {{ unit_amount_expression }}
{%- endmacro %}

{#- x * 1e9 of a 9-place decimal (and x * 1e12 of a 12-place one) is a whole number, so Spark's
    rounding of that product to 6 places drops only zeros. -#}
{% macro spark__exact_amount(quantity_expression, unit_amount_expression) -%}
    (
        cast(round(cast(({{ quantity_expression }}) as decimal(38, 9)) * 1000000000, 0) as decimal(38, 0))
        * cast(round(cast({{ unit_amount_expression }} as decimal(38, 12)) * 1000000000000, 0) as decimal(38, 0))
    )
{%- endmacro %}

{% macro exact_flat_amount(flat_amount_expression) -%}
    {{ return(adapter.dispatch('exact_flat_amount', 'meterworks')(flat_amount_expression)) }}
{%- endmacro %}

{% macro default__exact_flat_amount(flat_amount_expression) -%}
    {{ flat_amount_expression }}
{%- endmacro %}

{% macro spark__exact_flat_amount(flat_amount_expression) -%}
    (cast(round(cast({{ flat_amount_expression }} as decimal(38, 12)) * 1000000000000, 0) as decimal(38, 0)) * 1000000000)
{%- endmacro %}

{#- The exact amount shown to 12 places, rounded half-up. -#}
{% macro exact_amount_decimal(amount_expression) -%}
    {{ return(adapter.dispatch('exact_amount_decimal', 'meterworks')(amount_expression)) }}
{%- endmacro %}

{% macro default__exact_amount_decimal(amount_expression) -%}
    cast({{ amount_expression }} as decimal(38, 12))
{%- endmacro %}

{#- Whole 1e-12 units (half-up on the remainder), then split at the decimal point: a single
    decimal(38, 0) x 1e-12 product would be typed with 6 places. -#}
{% macro spark__exact_amount_decimal(amount_expression) -%}
    {%- set units = meterworks.spark_units_half_up(amount_expression, '1000000000') -%}
    (
        cast(({{ units }} - {{ units }} % 1000000000000) / 1000000000000 as decimal(25, 0))
        + cast({{ units }} % 1000000000000 as decimal(12, 0)) * cast(0.000000000001 as decimal(12, 12))
    )
{%- endmacro %}

{#- The exact amount in whole minor units, half-up (amounts are never negative, so
    floor(x + 0.5) is exact). -#}
{% macro exact_amount_minor_units(amount_expression) -%}
    {{ return(adapter.dispatch('exact_amount_minor_units', 'meterworks')(amount_expression)) }}
{%- endmacro %}

{% macro default__exact_amount_minor_units(amount_expression) -%}
    cast(floor({{ amount_expression }} + 0.5) as {{ dbt.type_bigint() }})
{%- endmacro %}

{% macro spark__exact_amount_minor_units(amount_expression) -%}
    cast({{ meterworks.spark_units_half_up(amount_expression, '1000000000000000000000') }} as bigint)
{%- endmacro %}

{#- A non-negative whole decimal(38, 0) divided by a power of ten, rounded half-up, exactly:
    the remainder is split off first, so the division's 6-place result is a whole number. -#}
{% macro spark_units_half_up(whole_expression, power_of_ten) -%}
    (
        cast((({{ whole_expression }}) - ({{ whole_expression }}) % {{ power_of_ten }}) / {{ power_of_ten }} as decimal(38, 0))
        + case when ({{ whole_expression }}) % {{ power_of_ten }} * 2 >= {{ power_of_ten }} then 1 else 0 end
    )
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
