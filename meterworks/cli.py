"""``meterworks``: the console script. Every job materializes Dagster assets in-process
against the instance under ``$METERWORKS_HOME/dagster``, so runs show up in ``meterworks dev``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from datetime import date
from pathlib import Path

from meterworks.catalog import CatalogError, load_catalog
from meterworks.config import REPO_ROOT, Settings, settings

EXIT_USAGE = 2


class UserError(Exception):
    """A problem the user can fix; printed as one line, never as a traceback."""


def _user_error_in(exc: BaseException) -> BaseException | None:
    """The CatalogError/IngestError/StripeSyncError buried in a Dagster failure, if that is
    what it was (their messages are one line, written for the user, free of secrets)."""
    from meterworks.ingest import IngestError
    from meterworks.stripe_sync import StripeSyncError
    from meterworks.webhooks.cli import WebhookCommandError

    expected = (CatalogError, IngestError, StripeSyncError, UserError, WebhookCommandError)
    seen = exc
    while seen is not None:
        if isinstance(seen, expected):
            return seen
        user = getattr(seen, "user_exception", None)
        if isinstance(user, expected):
            return user
        seen = seen.__cause__ or seen.__context__
    return None


def _check_catalog(cfg: Settings) -> None:
    load_catalog(cfg.catalog)  # raises CatalogError with file, entry and problem


def cmd_ingest(args: argparse.Namespace, cfg: Settings) -> int:
    from meterworks.jobs import materialization_metadata, run_job

    _check_catalog(cfg)
    paths = [Path(p).expanduser().resolve() for p in args.paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UserError(f"no such file or directory: {', '.join(missing)}")
    result = run_job(
        cfg,
        "meterworks_ingest",
        {"ops": {"raw_event_store": {"config": {"paths": [str(p) for p in paths]}}}},
    )
    metadata = materialization_metadata(result, "raw_events")
    print(json.dumps(metadata.get("counts", {}), sort_keys=True))
    return 0


def cmd_build(args: argparse.Namespace, cfg: Settings) -> int:
    from dagster_project.defs.transform.build_config import dbt_run_config
    from meterworks.jobs import run_job

    _check_catalog(cfg)
    config = dbt_run_config(args.full_refresh, args.unit_tests, args.audit)
    run_job(cfg, "meterworks_build", config)
    if not args.quiet:
        from meterworks.summary import render_summary

        print(render_summary(cfg.warehouse))
    return 0


def cmd_run(args: argparse.Namespace, cfg: Settings) -> int:
    from meterworks.jobs import materialization_metadata, run_job
    from meterworks.summary import render_summary

    _check_catalog(cfg)
    result = run_job(cfg, "meterworks_pipeline")
    counts = materialization_metadata(result, "raw_events")
    print(json.dumps(counts.get("counts", {"files": 0}), sort_keys=True))
    print(render_summary(cfg.warehouse))
    return 0


def cmd_demo(args: argparse.Namespace, cfg: Settings) -> int:
    from meterworks.demo import generate_demo
    from meterworks.jobs import materialization_metadata, run_job
    from meterworks.summary import render_summary

    cfg.ensure_dirs()
    if cfg.warehouse.exists() and not args.keep:
        cfg.warehouse.unlink()  # the demo starts from a clean warehouse every time
        Path(f"{cfg.warehouse}.wal").unlink(missing_ok=True)
    end = date.fromisoformat(args.end) if args.end else None
    summary = generate_demo(
        cfg.demo_dir, seed=args.seed, customers=args.customers, days=args.days, end=end
    )
    if not os.environ.get("METERWORKS_CATALOG"):
        shutil.copyfile(cfg.demo_dir / "catalog.yml", cfg.home / "catalog.yml")
    # the demo's Stripe account, as list exports, where the Stripe sync reads without a key
    shutil.rmtree(cfg.stripe_exports, ignore_errors=True)
    shutil.copytree(cfg.demo_dir / "stripe", cfg.stripe_exports)
    print(f"demo data written to {cfg.demo_dir} ({summary})", file=sys.stderr)
    result = run_job(
        cfg,
        "meterworks_ingest",
        {"ops": {"raw_event_store": {"config": {"paths": [str(cfg.demo_dir / "events")]}}}},
    )
    counts = materialization_metadata(result, "raw_events").get("counts", {})
    print("ingest: " + json.dumps(counts, sort_keys=True))
    # the first build of a fresh warehouse also runs the history-wide audit tests
    from dagster_project.defs.transform.build_config import dbt_run_config

    run_job(cfg, "meterworks_build", dbt_run_config(audit=True))
    print(render_summary(cfg.warehouse))
    print(
        f"\nNext: `meterworks app` opens the Streamlit app and `meterworks dev` the Dagster UI "
        f"on this home ({cfg.home})."
    )
    return 0


def cmd_sync_stripe(args: argparse.Namespace, cfg: Settings) -> int:
    from meterworks.jobs import materialization_metadata, run_job

    config = {"ops": {"stripe_objects": {"config": {"full": args.full}}}}
    result = run_job(cfg, "meterworks_stripe_sync", config)
    metadata = materialization_metadata(result, "stripe_objects")
    print(json.dumps({"mode": metadata.get("mode"), **(metadata.get("counts") or {})}))
    return 0


def cmd_summary(args: argparse.Namespace, cfg: Settings) -> int:
    from meterworks.summary import render_summary

    print(render_summary(cfg.warehouse))
    return 0


def cmd_catalog(args: argparse.Namespace, cfg: Settings) -> int:
    path = Path(args.path) if args.path else cfg.catalog
    catalog = load_catalog(path)
    print(f"{path}: ok ({len(catalog.meters)} meters, {len(catalog.plans)} plans, "
          f"{len(catalog.customers)} customers)")  # fmt: skip
    return 0


def cmd_report(args: argparse.Namespace, cfg: Settings) -> int:
    """``report mrr --month YYYY-MM``: the ``mrr_report`` partition, through Dagster."""
    import contextlib

    import dagster as dg

    from dagster_project.defs.revenue.partitions import monthly_report_partitions, partition_key
    from meterworks.jobs import (
        QUIET_LOGGING,
        load_definitions,
        materialization_metadata,
        prepare_dbt_manifest,
        prepare_environment,
    )
    from meterworks.reports import ReportError, check_mrr_data, parse_month
    from meterworks.warehouse import open_warehouse

    try:
        month = parse_month(args.month)
    except ReportError as exc:
        raise UserError(f"--month {exc}") from None
    key = partition_key(month)
    if not monthly_report_partitions.has_partition_key(key):
        last = monthly_report_partitions.get_last_partition_key() or "none"
        raise UserError(
            f"--month {month:%Y-%m} is not a closed month: reports cover "
            f"{monthly_report_partitions.start:%Y-%m} to {last[:7]}"
        )
    if not cfg.warehouse.exists():
        raise UserError(f"no warehouse at {cfg.warehouse}: run `meterworks build` first")
    with open_warehouse(cfg.warehouse, read_only=True) as con:
        try:
            check_mrr_data(con, month)
        except ReportError as exc:
            raise UserError(str(exc)) from None
    prepare_environment(cfg)
    prepare_dbt_manifest()
    job = load_definitions().resolve_job_def("meterworks_mrr_report")
    try:
        with dg.DagsterInstance.get() as instance, contextlib.redirect_stdout(sys.stderr):
            result = job.execute_in_process(
                run_config=QUIET_LOGGING, instance=instance, partition_key=key
            )
    except Exception as exc:
        seen: BaseException | None = exc
        while seen is not None:  # a ReportError (no data for the month...) is the user's to fix
            for candidate in (seen, getattr(seen, "user_exception", None)):
                if isinstance(candidate, ReportError):
                    raise UserError(str(candidate)) from None
            seen = seen.__cause__ or seen.__context__
        raise
    metadata = materialization_metadata(result, "mrr_report")
    print(metadata["csv"])
    print(metadata["xlsx"])
    return 0


def cmd_dev(args: argparse.Namespace, cfg: Settings) -> int:
    from meterworks.jobs import prepare_dbt_manifest, prepare_environment

    prepare_environment(cfg)
    prepare_dbt_manifest()
    command = [str(Path(sys.executable).with_name("dg")), "dev", "--port", str(args.port)]
    # dg dev re-parses dbt on each load with the `dbt` it finds on PATH: the venv's one.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    os.chdir(REPO_ROOT)
    os.execv(command[0], command)
    return 0  # pragma: no cover


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meterworks",
        description="Exactly-once usage metering, Stripe reconciliation, MRR and usage alerts.",
    )
    parser.add_argument("--home", help="state directory (default: $METERWORKS_HOME or ./data)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "ingest", help="ingest event files or folders; prints one JSON line of counts"
    )
    p.add_argument("paths", nargs="+", help="JSONL(.gz), CSV(.gz) or Parquet files, or folders")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("build", help="rebuild every model downstream of the raw event store")
    p.add_argument(
        "--full-refresh", action="store_true", help="rebuild incremental models from scratch"
    )
    p.add_argument(
        "--unit-tests", action="store_true", help="also run the dbt unit tests (SQL logic checks)"
    )
    p.add_argument(
        "--audit", action="store_true", help="also run the history-wide tests (nightly audit)"
    )
    p.add_argument("--quiet", action="store_true", help="do not print the summary")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("run", help="the scheduled job: ingest the inbox, then build")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="generate the demo into $METERWORKS_HOME and run it end to end")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--customers", type=int, default=200)
    p.add_argument("--days", type=int, default=120)
    p.add_argument("--end", help="last day of demo usage, YYYY-MM-DD (default: today, UTC)")
    p.add_argument("--keep", action="store_true", help="keep the existing warehouse")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "sync-stripe",
        help="sync Stripe (STRIPE_API_KEY, else the exports in $METERWORKS_HOME/stripe)",
    )
    p.add_argument("--full", action="store_true", help="re-list everything (no cursor)")
    p.set_defaults(func=cmd_sync_stripe)

    p = sub.add_parser("summary", help="print the summary of the current warehouse")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("catalog", help="validate a catalog file")
    p.add_argument(
        "path", nargs="?", help="default: $METERWORKS_CATALOG or $METERWORKS_HOME/catalog.yml"
    )
    p.set_defaults(func=cmd_catalog)

    p = sub.add_parser("report", help="write a finance report under $METERWORKS_HOME/reports")
    report = p.add_subparsers(dest="report", required=True)
    p = report.add_parser("mrr", help="the MRR report (CSV + Excel) of a closed month")
    p.add_argument("--month", required=True, help="the closed month, YYYY-MM")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("dev", help="open the Dagster UI (dg dev) on this home")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_dev)

    from app.cli import add_app_parser
    from meterworks.webhooks.cli import add_webhooks_parser

    add_webhooks_parser(sub)
    add_app_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = settings(args.home)
    try:
        return args.func(args, cfg)
    except Exception as exc:  # the one place a failure becomes a message and an exit code
        user = _user_error_in(exc)
        if user is None:
            raise
        print(f"meterworks: {user}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
