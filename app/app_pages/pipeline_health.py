"""Pipeline health: the last successful materializations (the Dagster instance's event log when
``DAGSTER_HOME`` is set, else the ingest batches and the snapshot), data freshness, quarantined
events by reason, duplicates and conflicts."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from app import auth, data
from app.formatting import when
from meterworks import health

auth.page_guard()
st.title("Pipeline health")
data.require_snapshot("raw.ingest_batches")


@st.cache_data(ttl=30, show_spinner=False)
def dagster_materializations(dagster_home: str) -> pd.DataFrame:
    """Latest materialization of every asset in the Dagster instance's event log."""
    import dagster as dg

    with dg.DagsterInstance.from_config(dagster_home) as instance:
        keys = list(instance.get_asset_keys())
        latest = instance.get_latest_materialization_events(keys) if keys else {}
    rows = []
    for key, event in latest.items():
        if event is None:
            continue
        rows.append(
            {
                "asset": key.to_user_string(),
                "last materialized": datetime.fromtimestamp(event.timestamp, UTC).replace(
                    tzinfo=None
                ),
                "run": event.run_id[:8],
            }
        )
    columns = ["asset", "last materialized", "run"]
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(rows, columns=columns).sort_values("asset").reset_index(drop=True)


@st.cache_data(ttl=60, show_spinner=False)
def ingest_figures(path: str, version: int) -> tuple[dict[str, int], dict[str, int]]:
    with data.cursor() as con:
        return health.totals(con), health.quarantine_by_reason(con)


info = data.snapshot_info() or {}
now = datetime.now(UTC).replace(tzinfo=None)
totals, reasons = ingest_figures(str(data.snapshot_file()), data.snapshot_version() or 0)
last_batch = data.frame(
    "select batch_id, started_at, committed_at, json_array_length(files::json) as files, rows_read, accepted, duplicates, "
    "conflicts, quarantined, corrections from raw.ingest_batches order by batch_id desc limit 20"
)
latest_event = None
if data.has("marts.fct_usage_hourly"):
    latest_event = data.scalar("select max(last_event_at) from marts.fct_usage_hourly")


def age(ts: object) -> str | None:
    if ts is None or pd.isna(ts):
        return None
    minutes = int((now - pd.Timestamp(ts).to_pydatetime()).total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min ago"
    return f"{minutes // 60} h ago" if minutes < 48 * 60 else f"{minutes // 1440} days ago"


st.subheader("Freshness")
c1, c2, c3 = st.columns(3)
c1.metric("Snapshot published", when(info.get("published_at")), age(info.get("published_at")), delta_color="off")  # fmt: skip
committed = last_batch["committed_at"].iloc[0] if not last_batch.empty else None
c2.metric("Last ingest batch", when(committed), age(committed), delta_color="off")
c3.metric("Latest event in the marts", when(latest_event), age(latest_event), delta_color="off")

st.subheader("Last successful materializations")
dagster_home = os.environ.get("DAGSTER_HOME")
shown = False
if dagster_home and Path(dagster_home).is_dir():
    try:
        mats = dagster_materializations(dagster_home)
    except Exception as exc:  # the instance is unreadable: fall back, say why
        st.caption(f"Dagster instance at {dagster_home} unreadable ({type(exc).__name__}).")
    else:
        st.caption(f"From the Dagster instance at {dagster_home}.")
        st.dataframe(mats, hide_index=True, width="stretch", key="health_dagster")
        shown = True
if not shown:
    st.caption("DAGSTER_HOME not set: from the ingest batches and the snapshot.")
    fallback = pd.DataFrame(
        {
            "asset": ["raw_events (last ingest batch)", "marts (snapshot of the last build)"],
            "last materialized": [when(committed), when(info.get("published_at"))],
        }
    )
    st.dataframe(fallback, hide_index=True, width="stretch", key="health_fallback")

st.subheader("Ingestion")
c1, c2, c3, c4, c5 = st.columns(5)
c1.metric("Rows read", f"{totals['rows_read']:,}")
c2.metric("Accepted", f"{totals['accepted']:,}")
c3.metric("Duplicates dropped", f"{totals['duplicates']:,}")
c4.metric("Conflicts kept for review", f"{totals['conflicts']:,}")
c5.metric("Quarantined", f"{totals['quarantined']:,}")
st.markdown("**Quarantined events by reason**")
if not reasons:
    st.caption("Nothing quarantined.")
else:
    by_reason = pd.DataFrame({"reason": list(reasons), "events": list(reasons.values())})
    left, right = st.columns([1, 2])
    left.dataframe(by_reason, hide_index=True, width="stretch", key="health_reasons")
    right.altair_chart(
        alt.Chart(by_reason)
        .mark_bar()
        .encode(
            x="events:Q", y=alt.Y("reason:N", sort="-x", title=None), tooltip=["reason", "events"]
        ),
        width="stretch",
    )
st.markdown("**Recent ingest batches**")
st.dataframe(last_batch, hide_index=True, width="stretch", key="health_batches")
