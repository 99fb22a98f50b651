"""``meterworks webhooks ...``: look at deliveries, replay one, manage endpoints.

``add_webhooks_parser(sub)`` registers the ``webhooks`` subcommand on the main parser's
subparsers; each command is ``func(args, cfg) -> exit code`` like the others. Errors a user can
fix are printed as one line (exit 2). Secrets are never printed: ``secret --out FILE`` writes an
endpoint's secret to a new file readable only by its owner, for handing to the customer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from typing import Any

from meterworks.webhooks.delivery import drain, replay
from meterworks.webhooks.settings import webhook_settings
from meterworks.webhooks.store import DeliveryStore, utcnow

EXIT_USAGE = 2


class WebhookCommandError(Exception):
    """A problem the user can fix (unknown id, bad option)."""


def _store(cfg: Any) -> DeliveryStore:
    return DeliveryStore.open(webhook_settings(cfg.home).state_url)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _status(row: dict[str, Any]) -> str:
    if row["status"] == "pending" and row.get("endpoint_status") == "disabled":
        return "held"  # waits for `meterworks webhooks enable`
    return row["status"]


def cmd_list(args: argparse.Namespace, cfg: Any) -> int:
    store = _store(cfg)
    try:
        rows = store.deliveries(
            limit=args.limit, customer_id=args.customer, status=args.status, message_id=args.id
        )
        if args.json:
            print(json.dumps(rows, default=_fmt, indent=1))
            return 0
        for row in rows:
            row["state"] = _status(row)
            row["when"] = row["delivered_at"] or row["next_attempt_at"]
            row["error"] = (row["last_error"] or "")[:60] or None
        columns = ["message_id", "event_type", "customer_id", "target", "state", "attempts"]
        columns += ["last_status_code", "when", "error"]
        print(_table(rows, columns) if rows else "no deliveries")
        totals = store.counts()
        if totals:
            print(
                "totals: " + ", ".join(f"{k}={v}" for k, v in sorted(totals.items())),
                file=sys.stderr,
            )
    finally:
        store.close()
    return 0


def cmd_attempts(args: argparse.Namespace, cfg: Any) -> int:
    store = _store(cfg)
    try:
        rows = store.attempts_of(args.message_id)
        if not rows:
            raise WebhookCommandError(f"no attempts for message {args.message_id!r}")
        columns = ["attempt_no", "target", "trigger", "started_at", "outcome", "status_code"]
        print(_table(rows, [*columns, "latency_ms", "error"]))
    finally:
        store.close()
    return 0


def cmd_replay(args: argparse.Namespace, cfg: Any) -> int:
    store = _store(cfg)
    try:
        try:
            rows = replay(
                store, args.message_id, target=args.endpoint, settings=webhook_settings(cfg.home)
            )
        except KeyError:
            raise WebhookCommandError(f"no delivery of message {args.message_id!r}") from None
        for row in rows:
            row["state"] = _status(row)
        columns = ["message_id", "target", "state", "attempts", "last_status_code", "last_error"]
        print(_table(rows, columns))
        return 0 if all(r["status"] == "succeeded" for r in rows) else 1
    finally:
        store.close()


def cmd_drain(args: argparse.Namespace, cfg: Any) -> int:
    settings = webhook_settings(cfg.home)
    store = DeliveryStore.open(settings.state_url)
    try:
        report = drain(store, settings=settings, max_seconds=args.max_seconds)
    finally:
        store.close()
    print(json.dumps({"mode": settings.mode, **report.as_metadata()}, sort_keys=True))
    return 0


def cmd_endpoints(args: argparse.Namespace, cfg: Any) -> int:
    store = _store(cfg)
    try:
        rows = [vars(e) | {"secret": "whsec_…" if e.has_secret else "-"} for e in
                store.list_endpoints(args.customer)]  # fmt: skip
        columns = ["endpoint_id", "customer_id", "url", "status", "failing_since", "disabled_at"]
        print(_table(rows, [*columns, "secret"]) if rows else "no endpoints")
    finally:
        store.close()
    return 0


def cmd_enable(args: argparse.Namespace, cfg: Any) -> int:
    store = _store(cfg)
    try:
        try:
            due = store.enable_endpoint(args.endpoint_id, now=utcnow())
        except KeyError:
            raise WebhookCommandError(f"no endpoint {args.endpoint_id!r}") from None
    finally:
        store.close()
    print(f"{args.endpoint_id}: enabled; {due} held deliveries are due now")
    return 0


def cmd_disable(args: argparse.Namespace, cfg: Any) -> int:
    store = _store(cfg)
    try:
        try:
            store.disable_endpoint(args.endpoint_id, now=utcnow(), reason="disabled by command")
        except KeyError:
            raise WebhookCommandError(f"no enabled endpoint {args.endpoint_id!r}") from None
    finally:
        store.close()
    print(f"{args.endpoint_id}: disabled (its deliveries are held)")
    return 0


def cmd_secret(args: argparse.Namespace, cfg: Any) -> int:
    store = _store(cfg)
    try:
        try:
            secret = store.endpoint_secret(args.endpoint_id)
        except KeyError:
            raise WebhookCommandError(f"no endpoint with a secret {args.endpoint_id!r}") from None
    finally:
        store.close()
    try:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise WebhookCommandError(f"{args.out} exists; choose a new file") from None
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    print(f"{args.endpoint_id}: secret written to {args.out} (mode 0600)")
    return 0


def _guarded(func: Any) -> Any:
    def run(args: argparse.Namespace, cfg: Any) -> int:
        try:
            return func(args, cfg)
        except WebhookCommandError as exc:
            print(f"meterworks webhooks: {exc}", file=sys.stderr)
            return EXIT_USAGE

    run.__name__ = func.__name__
    return run


def add_webhooks_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``meterworks webhooks`` on the main parser's subparsers."""
    parser = sub.add_parser(
        "webhooks", help="webhook deliveries: list, attempts, replay, endpoints, enable"
    )
    cmds = parser.add_subparsers(dest="webhooks_command", required=True)

    p = cmds.add_parser("list", help="recent deliveries, newest first")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--customer")
    p.add_argument("--status", choices=["pending", "succeeded", "failed"])
    p.add_argument("--id", help="one message (alert id)")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    p.set_defaults(func=_guarded(cmd_list))

    p = cmds.add_parser("attempts", help="every attempt of one message")
    p.add_argument("message_id")
    p.set_defaults(func=_guarded(cmd_attempts))

    p = cmds.add_parser("replay", help="send one message again now (exit 1 if not delivered)")
    p.add_argument("message_id", help="the alert id (= svix-id)")
    p.add_argument("--endpoint", help="only this endpoint (default: every delivery)")
    p.set_defaults(func=_guarded(cmd_replay))

    p = cmds.add_parser("drain", help="deliver what is due now (what the Dagster sensor runs)")
    p.add_argument("--max-seconds", type=float, default=120.0)
    p.set_defaults(func=_guarded(cmd_drain))

    p = cmds.add_parser("endpoints", help="customer endpoints and their state (no secrets)")
    p.add_argument("--customer")
    p.set_defaults(func=_guarded(cmd_endpoints))

    p = cmds.add_parser("enable", help="re-enable an endpoint; its held deliveries go out")
    p.add_argument("endpoint_id")
    p.set_defaults(func=_guarded(cmd_enable))

    p = cmds.add_parser("disable", help="hold an endpoint's deliveries")
    p.add_argument("endpoint_id")
    p.set_defaults(func=_guarded(cmd_disable))

    p = cmds.add_parser("secret", help="write an endpoint's signing secret to a new 0600 file")
    p.add_argument("endpoint_id")
    p.add_argument("--out", required=True, help="a file that does not exist yet")
    p.set_defaults(func=_guarded(cmd_secret))
    return parser
