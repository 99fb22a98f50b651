"""The app while a real materialization runs: ``meterworks build`` in a subprocess holds the
warehouse's write lock for most of its run and republishes the snapshot at its end; meanwhile
every page is rendered again and again, and none shows an exception or an error. After the
build, the app shows the new snapshot without waiting for its cache to expire."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from meterworks.snapshot import open_snapshot, snapshot_path
from tests.test_app_support import app_test, build_demo_home, metrics, texts

#: how long pages are rendered while the build runs, at most; then the build is waited for
RENDER_FOR_SECONDS = 120
BUILD_TIMEOUT_SECONDS = 600
#: between rounds, so the renders leave the (2-core) machine to the build part of the time
PAUSE_SECONDS = 1.0


@pytest.fixture(scope="module")
def demo_home() -> Path:
    return build_demo_home()


def _published_at(home: Path):
    with open_snapshot(snapshot_path(home)) as con:
        return con.execute("select published_at from app.snapshot_info").fetchone()[0]


def _data_as_of(at) -> str:
    return " ".join(str(c.value) for c in at.sidebar.caption if "Data as of" in str(c.value))


def _check_overview(at) -> None:
    shown = metrics(at)
    assert shown["MRR"][0].startswith("USD ") and shown["ARR"][0].startswith("USD ")
    assert "Open reconciliation issues" in shown


def _check_customer(at) -> None:
    shown = metrics(at)
    assert shown["Accrued to date (USD)"][0].startswith("USD ")
    assert "Past invoices and reconciliation" in texts(at)
    assert at.get("vega_lite_chart"), "no usage chart"


def _check_reconciliation(at) -> None:
    assert int(metrics(at)["Charge-periods reconciled"][0].replace(",", "")) > 0
    assert "Measured quantity" in metrics(at)  # the drill-down


def _check_alerts(at) -> None:
    assert "Anomalies shown" in metrics(at) and "Fired" in metrics(at)


def _check_health(at) -> None:
    assert metrics(at)["Rows read"][0] not in ("0", "")
    assert "unreadable" not in texts(at)  # the Dagster instance is read while the run writes it


PAGES = [
    ("overview", _check_overview),
    ("customer", _check_customer),
    ("reconciliation", _check_reconciliation),
    ("alerts", _check_alerts),
    ("pipeline_health", _check_health),
]


def _render(at, page: str, check) -> None:
    at.switch_page(f"app_pages/{page}.py")
    at.run()
    assert not at.exception, (page, [e.value for e in at.exception])
    assert not at.error, (page, [e.value for e in at.error])
    assert "unavailable" not in texts(at), page
    check(at)


@pytest.mark.slow  # a whole `meterworks build` beside up to two minutes of renders
def test_pages_render_while_a_build_materializes(
    demo_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a copy of the demo home of our own: the build rewrites it, the other tests keep theirs
    home = tmp_path / "home"
    shutil.copytree(
        demo_home,
        home,
        ignore=shutil.ignore_patterns("dagster", "*.wal", ".snapshot*", "state.db", "inbox"),
    )
    # mark the copied snapshot as a day old, so the new one is told apart at a glance
    with duckdb.connect(str(snapshot_path(home))) as con:
        con.execute("update app.snapshot_info set published_at = published_at - interval 1 day")
    before = _published_at(home)
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        customer = con.execute(
            "select customer_id from marts.fct_projected_invoice where currency = 'usd' "
            "group by 1 order by 1 limit 1"
        ).fetchone()[0]

    env = {
        "METERWORKS_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "METERWORKS_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "METERWORKS_APP_PASSWORD": "not used: the session is signed in",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("METERWORKS_CATALOG", "METERWORKS_WAREHOUSE", "STRIPE_API_KEY"):
        monkeypatch.delenv(name, raising=False)

    at = app_test(query={"customer": customer})
    at.run()
    assert not at.exception
    assert f"Data as of {before:%Y-%m-%d %H:%M} UTC" in _data_as_of(at)

    script = Path(sys.executable).with_name("meterworks")  # the CLI of this environment
    launcher = [str(script)] if script.exists() else [sys.executable, "-m", "meterworks.cli"]
    command = [*launcher, "build", "--quiet"]
    log = tmp_path / "build.log"
    with open(log, "wb") as out:
        build = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=os.environ)
    started = time.monotonic()
    rounds_during_build = 0
    as_of_seen: set[str] = set()
    try:
        while time.monotonic() - started < RENDER_FOR_SECONDS:
            running = build.poll() is None
            for page, check in PAGES:
                _render(at, page, check)
                as_of_seen.add(_data_as_of(at))
            if not running:
                break
            if build.poll() is None:  # the whole round ran while the build did
                rounds_during_build += 1
            time.sleep(PAUSE_SECONDS)
        returncode = build.wait(timeout=BUILD_TIMEOUT_SECONDS)
    finally:
        if build.poll() is None:
            build.kill()
            build.wait()
    output = log.read_text(errors="replace")
    assert returncode == 0, output[-4000:]
    assert rounds_during_build >= 1, "the build ended before a round of pages was rendered"

    # the build republished the snapshot; the app shows it at once (its query cache is keyed
    # by the snapshot file's version, not only the TTL), figures included
    after = _published_at(home)
    assert after > before + timedelta(hours=12)
    for page, check in PAGES:
        _render(at, page, check)
    assert f"Data as of {after:%Y-%m-%d %H:%M} UTC" in _data_as_of(at)
    assert f"Data as of {before:%Y-%m-%d %H:%M} UTC" in " ".join(as_of_seen)
