"""``meterworks app``: the CLI side of the Streamlit app (wired by ``meterworks.cli`` with
``add_app_parser(sub)``).

    meterworks app [--host 127.0.0.1] [--port 8501]     run the app (streamlit run)
    meterworks app migrate                              apply the state migrations, publish a
                                                        snapshot if none; prints one JSON line
    meterworks app users                                list users and roles (OIDC sign-in)
    meterworks app grant EMAIL ROLES [--name NAME]      set a user's roles (comma-separated:
                                                        support, finance, leadership, ops, admin)
    meterworks app revoke EMAIL                         disable a user
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

EXIT_USAGE = 2


def _actor() -> str:
    try:
        return f"{getpass.getuser()} (cli)"
    except Exception:  # no login name (a container): still say where it came from
        return "cli"


def cmd_app(args: argparse.Namespace, cfg: Any) -> int:
    from app.launch import AppLaunchError, launch, prepare
    from meterworks.state import RoleError, make_engine, state_url, upgrade

    action = getattr(args, "app_command", None)
    try:
        if action is None:
            return launch(cfg.home, host=args.host, port=args.port)
        if action == "migrate":
            print(json.dumps(prepare(cfg.home), sort_keys=True))
            return 0
        from meterworks import state

        engine = make_engine(state_url(cfg.home))
        upgrade(engine)
        try:
            if action == "users":
                for user in state.list_users(engine):
                    status = "disabled" if user.disabled_at else "active"
                    print(f"{user.user_id}\t{','.join(sorted(user.roles)) or '-'}\t{status}")
            elif action == "grant":
                user = state.set_roles(
                    engine, args.user, args.roles, actor=_actor(), display_name=args.name
                )
                print(f"{user.user_id}: {','.join(sorted(user.roles)) or 'no roles'}")
            elif action == "revoke":
                state.disable_user(engine, args.user, actor=_actor())
                print(f"{args.user.strip().lower()}: disabled")
        finally:
            engine.dispose()
        return 0
    except (AppLaunchError, RoleError) as exc:
        print(f"meterworks: {exc}", file=sys.stderr)
        return EXIT_USAGE


def add_app_parser(sub: Any) -> None:
    p = sub.add_parser(
        "app", help="open the Streamlit app (overview, customers, reconciliation, adjustments)"
    )
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8501)
    p.set_defaults(func=cmd_app, app_command=None)
    actions = p.add_subparsers(dest="app_command")
    m = actions.add_parser("migrate", help="apply the app-state migrations; publish a snapshot")
    m.set_defaults(func=cmd_app)
    u = actions.add_parser("users", help="list the users and roles for OIDC sign-in")
    u.set_defaults(func=cmd_app)
    g = actions.add_parser("grant", help="set a user's roles (OIDC sign-in)")
    g.add_argument("user", help="the e-mail address the identity provider gives")
    g.add_argument("roles", help="comma-separated: support, finance, leadership, ops, admin")
    g.add_argument("--name", help="display name")
    g.set_defaults(func=cmd_app)
    r = actions.add_parser("revoke", help="disable a user")
    r.add_argument("user")
    r.set_defaults(func=cmd_app)
