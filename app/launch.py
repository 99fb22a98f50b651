"""``meterworks app``: run the Streamlit app on this home.

``launch()`` applies the state migrations, publishes a snapshot when there is a warehouse but no
snapshot yet (and the warehouse is not being written), then runs ``streamlit run`` on
127.0.0.1 by default. It refuses to listen beyond localhost unless sign-in is configured
(``METERWORKS_APP_PASSWORD``, or OIDC ``[auth]`` in the Streamlit secrets); on localhost without
either, it makes a one-time password for this run and prints it on the launching terminal only.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

from meterworks.config import settings

APP_SCRIPT = Path(__file__).resolve().parent / "streamlit_app.py"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
PASSWORD_ENV = "METERWORKS_APP_PASSWORD"
SECRETS_ENV = "METERWORKS_APP_SECRETS"


class AppLaunchError(ValueError):
    """A launch refused for a reason the user can fix (one line, no secrets)."""


def secrets_files(cwd: Path | None = None) -> list[Path]:
    """Where Streamlit will read secrets: ``$METERWORKS_APP_SECRETS`` when set, else its
    defaults (``~/.streamlit/secrets.toml``, ``./.streamlit/secrets.toml``)."""
    explicit = os.environ.get(SECRETS_ENV)
    if explicit:
        return [Path(explicit).expanduser().resolve()]
    cwd = cwd or Path.cwd()
    return [Path.home() / ".streamlit" / "secrets.toml", cwd / ".streamlit" / "secrets.toml"]


def oidc_configured(cwd: Path | None = None) -> bool:
    for path in secrets_files(cwd):
        try:
            with path.open("rb") as f:
                if "auth" in tomllib.load(f):
                    return True
        except (OSError, tomllib.TOMLDecodeError):
            continue
    return False


def auth_configured(cwd: Path | None = None) -> bool:
    return bool(os.environ.get(PASSWORD_ENV)) or oidc_configured(cwd)


def streamlit_command(host: str, port: int, extra: Sequence[str] = ()) -> list[str]:
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip
    explicit = os.environ.get(SECRETS_ENV)
    if explicit:
        command += ["--secrets.files", str(Path(explicit).expanduser().resolve())]
    return [*command, *extra]


def prepare(home: str | os.PathLike[str] | None = None) -> dict[str, object]:
    """Migrate the state database and make sure a snapshot exists when it can (the CLI may call
    this on its own, e.g. ``meterworks app --migrate-only``)."""
    from meterworks.snapshot import publish_from_warehouse, snapshot_path
    from meterworks.state import make_engine, state_url, upgrade

    cfg = settings(home)
    cfg.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(state_url(cfg.home))
    try:
        revision = upgrade(engine)
    finally:
        engine.dispose()
    published = False
    snap = snapshot_path(cfg.home)
    if cfg.warehouse.exists() and not snap.exists():
        try:
            publish_from_warehouse(cfg.warehouse, snap)
            published = True
        except Exception:  # the warehouse is being written: the build will publish
            published = False
    return {"state_revision": revision, "snapshot": str(snap), "published": published}


def launch(
    home: str | os.PathLike[str] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8501,
    extra_args: Sequence[str] = (),
) -> int:
    """Run the app until interrupted; returns streamlit's exit code. Raises
    ``AppLaunchError`` when asked to listen beyond localhost without sign-in configured."""
    if host not in LOCAL_HOSTS and not auth_configured():
        raise AppLaunchError(
            f"refusing to listen on {host} without sign-in: set {PASSWORD_ENV} or configure OIDC "
            "([auth] in .streamlit/secrets.toml), or listen on 127.0.0.1"
        )
    cfg = settings(home)
    prepare(cfg.home)
    env = {**os.environ, "METERWORKS_HOME": str(cfg.home)}
    env.setdefault("DAGSTER_HOME", str(cfg.home / "dagster"))
    if not auth_configured():
        one_time = secrets.token_urlsafe(12)
        env[PASSWORD_ENV] = one_time
        print(
            f"No {PASSWORD_ENV} or OIDC configured: sign in with the one-time password "
            f"{one_time} (valid for this run only).",
            file=sys.stderr,
        )
    print(f"Meterworks app on http://{host}:{port} (home {cfg.home})", file=sys.stderr)
    try:
        return subprocess.call(streamlit_command(host, port, extra_args), env=env)
    except KeyboardInterrupt:
        return 0
