{#- Revenue (MRR) helpers. Money stays exact: integer minor units and DECIMALs only; a division
    is done in integer arithmetic and rounded half-up once, at six decimal places. -#}

{#- Absolute path of the FX table (CSV: currency, month, rate_to_reporting): env
    METERWORKS_FX_RATES, else the repo's committed default data/fx_rates.csv, found from the
    dbt project directory (--project-dir, else the working directory dbt runs in). -#}
{% macro fx_rates_path() -%}
    {%- set project_dir = invocation_args_dict.get('project_dir') or '.' -%}
    {%- set default_path = project_dir ~ '/../data/fx_rates.csv' -%}
    {{- return(env_var('METERWORKS_FX_RATES', default_path)) -}}
{%- endmacro %}

{#- The currency MRR is reported in (lowercase ISO code): var `reporting_currency`, else env
    METERWORKS_REPORTING_CURRENCY, else usd. -#}
{% macro reporting_currency() -%}
    '{{ var("reporting_currency", env_var("METERWORKS_REPORTING_CURRENCY", "usd")) | lower }}'
{%- endmacro %}

{#- Numerator and denominator that turn one billing interval's amount into a month:
    month ÷ count, year ÷ (12 × count), week × 52 ÷ (12 × count), day × 365 ÷ (12 × count). -#}
{% macro monthly_numerator(interval_expression) -%}
    case {{ interval_expression }} when 'week' then 52 when 'day' then 365 else 1 end
{%- endmacro %}

{% macro monthly_denominator(interval_expression, interval_count_expression) -%}
    (case {{ interval_expression }} when 'month' then 1 else 12 end
        * coalesce({{ interval_count_expression }}, 1))
{%- endmacro %}

{#- numerator ÷ denominator as decimal(38,6), rounded half away from zero, exactly: the
    numerator (an exact integer or DECIMAL with at most 12 decimal places) is scaled to an
    integer of 1e-12 units and divided in HUGEINT arithmetic. denominator: a positive integer. -#}
{% macro exact_divide(numerator_expression, denominator_expression) -%}
    {{ return(adapter.dispatch('exact_divide', 'meterworks')(numerator_expression, denominator_expression)) }}
{%- endmacro %}

{% macro default__exact_divide(numerator_expression, denominator_expression) -%}
    (cast(
        sign(cast(round(cast({{ numerator_expression }} as decimal(38, 12)) * 1000000000000, 0) as hugeint))
        * ((abs(cast(round(cast({{ numerator_expression }} as decimal(38, 12)) * 1000000000000, 0) as hugeint))
            * 2 + cast({{ denominator_expression }} as hugeint) * 1000000)
            // (cast({{ denominator_expression }} as hugeint) * 2000000))
        as decimal(38, 0)) * cast(0.000001 as decimal(7, 6)))
{%- endmacro %}

{#- Spark has no 128-bit integer: the same arithmetic in decimal(38, 0), whose `div` truncates
    exactly (the quotient, about numerator × 1e6 / denominator, fits a bigint up to 9.2e12 minor
    units per month). -#}
{% macro spark__exact_divide(numerator_expression, denominator_expression) -%}
    {%- set scaled = 'cast(round(cast(' ~ numerator_expression ~ ' as decimal(38, 12)) * 1000000000000, 0) as decimal(38, 0))' -%}
    {%- set denominator = 'cast(' ~ denominator_expression ~ ' as decimal(38, 0))' -%}
    (cast(
        case when {{ scaled }} < 0 then -1 else 1 end
        * ((abs({{ scaled }}) * 2 + {{ denominator }} * 1000000) div ({{ denominator }} * 2000000))
        as decimal(38, 0)) * cast(0.000001 as decimal(7, 6)))
{%- endmacro %}

{#- Month m's mid-month instant (the 15th, 00:00 UTC): a licensed line's service period
    counts in month m when it contains this instant. -#}
{% macro mid_month_instant(month_expression) -%}
    (cast({{ month_expression }} as timestamp) + interval 14 day)
{%- endmacro %}

{#- The FX table as a relation (currency, month date, rate_to_reporting text). DuckDB reads the
    CSV itself; Spark reads the copy meterworks.engine.lake exports to the lake (the same
    read_csv, so both engines see the same rows). -#}
{% macro fx_rates_relation() -%}
    {{ return(adapter.dispatch('fx_rates_relation', 'meterworks')()) }}
{%- endmacro %}

{% macro default__fx_rates_relation() -%}
    read_csv(
        '{{ meterworks.fx_rates_path() }}',
        header = true,
        columns = { 'currency': 'VARCHAR', 'month': 'DATE', 'rate_to_reporting': 'VARCHAR' }
    )
{%- endmacro %}

{% macro spark__fx_rates_relation() -%}
    raw.fx_rates
{%- endmacro %}
