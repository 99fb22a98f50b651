"""The app in a real browser: ``streamlit run`` on 127.0.0.1 (a free port) over a small demo,
Debian's Chromium driven by Playwright (``executable_path``; no browser download), sign in with
the password, open every page, check its key figures and that no exception is shown, and save
a screenshot of each into ``$METERWORKS_ARTIFACTS`` (default ``artifacts/screenshots/``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from tests.test_app_support import APP_SCRIPT, build_demo_home, warehouse

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
PASSWORD = "browser-test-password"
LAUNCH_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's Chromium is not installed (/usr/bin/chromium): run "
        "scripts/ci/install-system-packages.sh",
    ),
]


def usd(minor) -> str:
    value = int(Decimal(str(minor)).to_integral_value(rounding=ROUND_HALF_UP))
    return f"USD {Decimal(value).scaleb(-2):,.2f}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = build_demo_home()
    port = _free_port()
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    env = {**os.environ, "METERWORKS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
           "METERWORKS_APP_PASSWORD": PASSWORD, "METERWORKS_APP_ROLE": "admin",
           "METERWORKS_STATE_URL": f"sqlite:///{tmp_path_factory.mktemp('state') / 'state.db'}"}  # fmt: skip
    env.pop("STRIPE_API_KEY", None)
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", APP_SCRIPT, "--server.address", "127.0.0.1",
             "--server.port", str(port), "--server.headless", "true",
             "--browser.gatherUsageStats", "false"],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url, home
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_FLAGS)
        context = browser.new_context(viewport={"width": 1440, "height": 2600})
        page = context.new_page()
        page.set_default_timeout(60_000)
        yield page
        context.close()
        browser.close()


def _artifacts() -> Path:
    path = Path(os.environ.get("METERWORKS_ARTIFACTS") or REPO / "artifacts" / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _settle(page) -> None:
    """Wait until Streamlit has finished the run (no running indicator) and charts are drawn."""
    page.wait_for_load_state("networkidle")
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000
    )
    page.wait_for_timeout(500)


def _check(page, name: str, *expected: str) -> None:
    for text in expected:
        page.get_by_text(text, exact=False).first.wait_for(state="visible")
    _settle(page)
    assert page.locator('[data-testid="stException"]').count() == 0, f"exception on {name}"
    page.screenshot(path=str(_artifacts() / f"{name}.png"), full_page=True)


def test_every_page_in_a_real_browser(server, browser_page) -> None:
    url, home = server
    page = browser_page
    with warehouse(home) as con:
        month = con.execute(
            "select ending_mrr, arr from marts.fct_mrr_movements order by month desc limit 1 offset 1"
        ).fetchone()
        flagged = con.execute(
            "select count(*) from marts.fct_invoice_reconciliation where status != 'matched'"
        ).fetchone()[0]
        customer, name = con.execute(
            "select p.customer_id, c.customer_name from marts.fct_projected_invoice p "
            "join marts.dim_customers c using (customer_id) group by all "
            "order by sum(p.projected_amount) desc limit 1"
        ).fetchone()
        projected = con.execute(
            "select sum(projected_amount) from marts.fct_projected_invoice where customer_id = ?",
            [customer],
        ).fetchone()[0]
        rows_read = con.execute("select sum(rows_read)::bigint from raw.ingest_batches").fetchone()[
            0
        ]

    page.goto(url)
    page.get_by_label("Password", exact=True).wait_for()
    _check(page, "00-sign-in", "Sign in")
    assert page.get_by_text("MRR").count() == 0  # nothing before sign-in
    page.get_by_label("Your name or e-mail").fill("Browser Test")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    _check(page, "01-overview", "MRR bridge", usd(month[0]), usd(month[1]))

    page.get_by_role("link", name="Customer").first.click()
    page.get_by_label("Search by customer id or name").fill(customer)
    page.get_by_label("Search by customer id or name").press("Enter")
    _check(page, "02-customer", str(name), usd(projected), "Past invoices and reconciliation")

    page.get_by_role("link", name="Reconciliation").first.click()
    _check(page, "03-reconciliation", "Charge-periods reconciled", "Download CSV")
    flagged_metric = page.locator('[data-testid="stMetric"]', has_text="Flagged").first
    assert flagged_metric.locator('[data-testid="stMetricValue"]').inner_text() == f"{flagged:,}"

    page.get_by_role("link", name="Alerts").first.click()
    _check(page, "04-alerts", "Usage anomalies", "Quota and spend thresholds")

    page.get_by_role("link", name="Adjustments").first.click()
    _check(page, "05-adjustments", "New adjustment", "Audit log")

    page.get_by_role("link", name="Pipeline health").first.click()
    _check(page, "06-pipeline-health", "Quarantined events by reason", f"{rows_read:,}")
