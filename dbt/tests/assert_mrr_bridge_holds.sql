{#- The MRR bridge holds exactly for every month: ending = starting + new + expansion
    + reactivation − contraction − churned, and starting = the previous month's ending (plus the
    FX restatement of the opening book, which is 0 unless a rate changed), and the customer
    counts bridge the same way. Returns the months where any of it fails. -#}
with movements as (
    select
        *,
        lag(ending_mrr) over (order by month) as previous_ending_mrr,
        lag(ending_customers) over (order by month) as previous_ending_customers
    from {{ ref('fct_mrr_movements') }}
)

select *
from movements
where
    ending_mrr
    != starting_mrr + new_mrr + expansion_mrr + reactivation_mrr - contraction_mrr - churned_mrr
    or starting_mrr != coalesce(previous_ending_mrr, 0) + fx_restatement_mrr
    or ending_customers != starting_customers + new_customers + reactivation_customers - churned_customers
    or starting_customers != coalesce(previous_ending_customers, 0)
