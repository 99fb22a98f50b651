"""The app's snapshot: published atomically from an open warehouse connection, read while a
materialization holds the warehouse, and produced by the ``app_snapshot`` Dagster asset in
every build (the demo's included); the launcher's guard rails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from meterworks.snapshot import open_snapshot, publish_snapshot, snapshot_path
from tests.test_app_support import app_test, build_demo_home, metrics, open_page, warehouse


@pytest.fixture(scope="module")
def demo_home() -> Path:
    return build_demo_home()


def _tiny_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    from meterworks.warehouse import RAW_DDL

    con = duckdb.connect(str(path))
    con.execute(RAW_DDL)
    con.execute("create schema marts")
    con.execute("create table marts.fct_mrr_movements as select date '2026-11-01' as month, 1 as x")
    con.execute("create schema staging")
    con.execute(
        "create view staging.stg_stripe__customers as "
        "select 'acme' as customer_id, 'cus_1' as stripe_customer_id"
    )
    return con


def test_publish_is_atomic_and_complete(tmp_path: Path) -> None:
    con = _tiny_warehouse(tmp_path / "warehouse.duckdb")
    target = snapshot_path(tmp_path)
    first = publish_snapshot(con, target)
    assert first["tables"]["marts.fct_mrr_movements"] == 1
    assert first["tables"]["app.stripe_customers"] == 1
    reader = duckdb.connect(str(target), read_only=True)  # a reader of the old snapshot
    con.execute("insert into marts.fct_mrr_movements values (date '2026-12-01', 2)")
    publish_snapshot(con, target)
    # the old reader still sees a whole snapshot (the old one); a new reader sees the new one
    assert reader.execute("select count(*) from marts.fct_mrr_movements").fetchone()[0] == 1
    reader.close()
    with open_snapshot(target) as snap:
        assert snap.execute("select count(*) from marts.fct_mrr_movements").fetchone()[0] == 2
        assert snap.execute("select count(*) from app.snapshot_info").fetchone()[0] == 1
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".snapshot")]
    assert leftovers == []  # no temporary file left behind


def test_publish_from_a_read_only_connection(tmp_path: Path) -> None:
    _tiny_warehouse(tmp_path / "warehouse.duckdb").close()
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    result = publish_snapshot(con, tmp_path / "snap.duckdb")
    assert "marts.fct_mrr_movements" in result["tables"]


def test_the_demo_build_published_the_snapshot(demo_home: Path) -> None:
    """``meterworks demo`` runs the build job, which includes the app_snapshot asset."""
    with warehouse(demo_home) as con, open_snapshot(snapshot_path(demo_home)) as snap:
        for table in ("fct_mrr_movements", "fct_invoice_reconciliation", "fct_usage_daily"):
            expected = con.execute(f"select count(*) from marts.{table}").fetchone()[0]
            assert snap.execute(f"select count(*) from marts.{table}").fetchone()[0] == expected
        events = con.execute("select count(*) from raw.events").fetchone()[0]
        assert snap.execute("select sum(events) from app.raw_event_counts").fetchone()[0] == events
        assert snap.execute("select count(*) from raw.adjustments").fetchone()[0] == 0


def test_the_app_keeps_working_while_a_materialization_writes(
    demo_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Another process holds the warehouse's write lock (as a build does): DuckDB then refuses
    even a read-only open, and the app goes on from its snapshot."""
    monkeypatch.setenv("METERWORKS_HOME", str(demo_home))
    monkeypatch.setenv("METERWORKS_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    with warehouse(demo_home) as con:
        mrr_rows = con.execute("select count(*) from marts.fct_mrr_movements").fetchone()[0]
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys, time
            con = duckdb.connect({str(demo_home / 'warehouse.duckdb')!r})
            con.execute("begin")
            con.execute("create table if not exists raw.lock_probe (x int)")
            print("locked", flush=True)
            sys.stdin.readline()
            con.execute("rollback")
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(duckdb.IOException):
            duckdb.connect(str(demo_home / "warehouse.duckdb"), read_only=True)
        at = open_page(app_test(), "overview")
        assert metrics(at)["MRR"][0].startswith("USD ")
        assert not at.error and mrr_rows
        open_page(at, "pipeline_health")
        assert metrics(at)["Rows read"][0] != "0"
    finally:
        holder.communicate("\n", timeout=30)
    assert holder.returncode == 0


def test_the_app_assets_are_in_the_build(dbt_manifest) -> None:
    import dagster as dg

    from meterworks.jobs import load_definitions

    definitions = load_definitions()
    graph = definitions.resolve_asset_graph()
    snapshot = graph.get(dg.AssetKey("app_snapshot"))
    assert snapshot.group_name == "app"
    assert {dg.AssetKey("fct_mrr_movements"), dg.AssetKey("fct_invoice_reconciliation"),
            dg.AssetKey("fct_usage_anomalies")} <= set(snapshot.parent_keys)  # fmt: skip
    adjustments = graph.get(dg.AssetKey("adjustments"))
    assert adjustments.group_name == "app"
    assert dg.AssetKey("stg_meterworks__adjustments") in adjustments.child_keys
    build = definitions.resolve_job_def("meterworks_build")
    selected = {k.to_user_string() for k in build.asset_layer.selected_asset_keys}
    assert {"app_snapshot", "adjustments"} <= selected


# -- the launcher ----------------------------------------------------------------------------


def test_launcher_refuses_to_listen_beyond_localhost_without_sign_in(monkeypatch, tmp_path):
    from app.launch import AppLaunchError, launch

    monkeypatch.delenv("METERWORKS_APP_PASSWORD", raising=False)
    monkeypatch.setenv("METERWORKS_APP_SECRETS", str(tmp_path / "absent.toml"))
    calls = []
    monkeypatch.setattr("subprocess.call", lambda cmd, env: calls.append((cmd, env)) or 0)
    with pytest.raises(AppLaunchError, match=r"refusing to listen on 0\.0\.0\.0 without sign-in"):
        launch(tmp_path / "home", host="0.0.0.0")
    assert calls == []
    # on localhost it runs, with a one-time password for this run only
    assert launch(tmp_path / "home", port=8599) == 0
    [(cmd, env)] = calls
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.port") + 1] == "8599"
    assert len(env["METERWORKS_APP_PASSWORD"]) >= 16
    assert env["METERWORKS_HOME"] == str((tmp_path / "home").resolve())
    # with OIDC configured (or a password), listening wide is allowed
    (tmp_path / "secrets.toml").write_text('[auth]\nredirect_uri = "x"\ncookie_secret = "y"\n')
    monkeypatch.setenv("METERWORKS_APP_SECRETS", str(tmp_path / "secrets.toml"))
    assert launch(tmp_path / "home", host="0.0.0.0") == 0
    assert "--secrets.files" in calls[-1][0]


def test_prepare_migrates_and_publishes(tmp_path, monkeypatch) -> None:
    from app.launch import prepare

    monkeypatch.delenv("METERWORKS_STATE_URL", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    _tiny_warehouse(home / "warehouse.duckdb").close()
    result = prepare(home)
    assert result == {"state_revision": "0001", "snapshot": str(home / "snapshot.duckdb"),
                      "published": True}  # fmt: skip
    assert os.path.exists(home / "state.db")


def test_app_cli_manages_roles_and_migrations(tmp_path, monkeypatch, capsys) -> None:
    """``meterworks app ...`` as the CLI wires it (``add_app_parser``)."""
    import argparse

    from app.cli import add_app_parser
    from meterworks.config import settings

    monkeypatch.delenv("METERWORKS_STATE_URL", raising=False)
    parser = argparse.ArgumentParser(prog="meterworks")
    add_app_parser(parser.add_subparsers(dest="command", required=True))
    cfg = settings(tmp_path / "home")

    def run(*argv: str) -> int:
        args = parser.parse_args(list(argv))
        return args.func(args, cfg)

    assert run("app", "migrate") == 0
    assert json.loads(capsys.readouterr().out)["state_revision"] == "0001"
    assert run("app", "grant", "Fin@Example.com", "finance,leadership") == 0
    assert capsys.readouterr().out.strip() == "fin@example.com: finance,leadership"
    assert run("app", "grant", "x@example.com", "root") == 2
    assert "unknown role(s) root" in capsys.readouterr().err
    assert run("app", "users") == 0
    assert capsys.readouterr().out.split() == ["fin@example.com", "finance,leadership", "active"]
    assert run("app", "revoke", "fin@example.com") == 0
    monkeypatch.delenv("METERWORKS_APP_PASSWORD", raising=False)
    monkeypatch.setenv("METERWORKS_APP_SECRETS", str(tmp_path / "absent.toml"))
    assert run("app", "--host", "0.0.0.0") == 2
    assert "refusing to listen" in capsys.readouterr().err
