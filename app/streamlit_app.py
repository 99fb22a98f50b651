"""The Meterworks app's entrypoint (``meterworks app`` runs ``streamlit run`` on it).

Sign-in first (``app.auth``); then the pages the user's roles allow, through ``st.navigation``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run app/streamlit_app.py` from anywhere
    sys.path.insert(0, str(ROOT))

from app import auth  # noqa: E402
from app.data import snapshot_info  # noqa: E402
from app.formatting import when  # noqa: E402

PAGES_DIR = Path(__file__).resolve().parent / "app_pages"

st.set_page_config(page_title="Meterworks", page_icon=":material/speed:", layout="wide")

user = auth.require_sign_in()

overview = st.Page(
    PAGES_DIR / "overview.py", title="Overview", icon=":material/monitoring:", url_path="overview"
)
customer = st.Page(
    PAGES_DIR / "customer.py",
    title="Customer",
    icon=":material/person_search:",
    url_path="customer",
)
reconciliation = st.Page(
    PAGES_DIR / "reconciliation.py",
    title="Reconciliation",
    icon=":material/rule:",
    url_path="reconciliation",
)
alerts = st.Page(
    PAGES_DIR / "alerts.py", title="Alerts", icon=":material/notifications:", url_path="alerts"
)
adjustments = st.Page(
    PAGES_DIR / "adjustments.py",
    title="Adjustments",
    icon=":material/edit_note:",
    url_path="adjustments",
)
health = st.Page(
    PAGES_DIR / "pipeline_health.py",
    title="Pipeline health",
    icon=":material/health_and_safety:",
    url_path="pipeline-health",
)

pages: dict[str, list] = {}
if user.can_see_revenue:
    pages.setdefault("Revenue", []).append(overview)
pages.setdefault("Customers", []).append(customer)
if user.can_reconcile:
    pages.setdefault("Revenue", []).append(reconciliation)
pages["Customers"].append(alerts)
if user.can_adjust or user.can_see_revenue:
    pages.setdefault("Operations", []).append(adjustments)
pages.setdefault("Operations", []).append(health)

st.session_state["mw_pages"] = {
    "overview": overview if user.can_see_revenue else None,
    "customer": customer,
    "reconciliation": reconciliation if user.can_reconcile else None,
    "alerts": alerts,
    "adjustments": adjustments if (user.can_adjust or user.can_see_revenue) else None,
    "health": health,
}

with st.sidebar:
    st.caption(f"Signed in as **{user.name}** ({', '.join(sorted(user.roles))})")
    info = snapshot_info()
    st.caption(f"Data as of {when(info['published_at'])}" if info else "No data yet")
    if st.button("Sign out", key="mw_sign_out"):
        auth.sign_out(user)

st.navigation(pages).run()
