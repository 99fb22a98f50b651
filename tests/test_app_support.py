"""Shared by the app tests (no tests here): one small demo per test session, and AppTest
helpers.

The demo is built once per process (``app_demo_home``), however many modules ask for it; set
``METERWORKS_TEST_APP_HOME`` to an existing demo home to skip building it while developing.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

APP_SCRIPT = str(Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py")
SMALL_DEMO = ["--customers", "30", "--days", "70", "--seed", "7"]
_BUILT: dict[str, Path] = {}


def build_demo_home() -> Path:
    """A small demo, built through the CLI once per process (snapshot included)."""
    if "home" in _BUILT:
        return _BUILT["home"]
    reuse = os.environ.get("METERWORKS_TEST_APP_HOME")
    if reuse:
        _BUILT["home"] = Path(reuse)
        return _BUILT["home"]
    from meterworks.cli import main

    home = Path(tempfile.mkdtemp(prefix="meterworks-app-")) / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("METERWORKS_HOME", str(home))
        mp.setenv("DAGSTER_HOME", str(home / "dagster"))
        mp.delenv("METERWORKS_CATALOG", raising=False)
        mp.delenv("METERWORKS_STATE_URL", raising=False)
        mp.delenv("STRIPE_API_KEY", raising=False)
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["demo", *SMALL_DEMO]) == 0
    _BUILT["home"] = home
    return home


@contextlib.contextmanager
def warehouse(home: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The demo's warehouse, read-only: tests compute what a page must show from it."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


def app_test(
    *,
    roles: tuple[str, ...] | None = ("admin",),
    name: str = "tester",
    query: dict[str, str] | None = None,
) -> Any:
    """An AppTest of the entrypoint; ``roles`` None leaves the session signed out."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP_SCRIPT, default_timeout=60)
    if roles is not None:
        at.session_state["mw_user"] = {
            "user_id": name, "name": name, "roles": sorted(roles), "method": "password",
        }  # fmt: skip
    if query:
        at.query_params.update(query)
    return at


def open_page(at: Any, page: str) -> Any:
    """Run the entrypoint, then switch to ``app_pages/<page>.py`` and run it."""
    at.run()
    if page:
        at.switch_page(f"app_pages/{page}.py")
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: Any) -> dict[str, tuple[str, str]]:
    return {m.label: (m.value, m.delta) for m in at.metric}


def texts(at: Any) -> str:
    """Everything written as text on the page (markdown, captions, alerts)."""
    parts = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "title",
                 "header", "subheader"):  # fmt: skip
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def frame_with(at: Any, *columns: str) -> Any:
    """The first dataframe shown whose columns include ``columns``."""
    for df in at.dataframe:
        if set(columns) <= set(df.value.columns):
            return df.value
    raise KeyError(f"no dataframe with columns {columns}")
