"""dbt run in the step's own interpreter, behind the ``subprocess.Popen`` face dagster-dbt reads.

A ``dbt build`` subprocess spends ~2-4 s before its first model (a Python start, the dbt and
adapter imports, the partial-parse load) and the usage path runs two of them per build. The
step process has already imported dagster-dbt, so running dbt's programmatic entry point
(``dbtRunner``) here costs a fraction of that.

``InProcessDbt`` runs one invocation in a thread and hands its structured log to dagster-dbt
line by line, exactly as the CLI prints it with ``--log-format json``: each event of level
info or above, serialised by dbt's own ``msg_to_dict`` and scrubbed of secrets as dbt's JSON
logger does. dagster-dbt's ``DbtCliInvocation`` then turns the lines into asset and check
events and raises on failure unchanged; ``returncode`` follows the CLI's exit codes (0 success,
1 failed nodes, 2 dbt error).

dbt keeps process-wide state (its flags, the adapter registry, dbt-duckdb's shared DuckDB
environment), so invocations in one process run one at a time (a lock), and after each the
DuckDB environment is closed: the warehouse file must not stay open in a long-lived step or
CLI process (another process could not write it).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

#: One dbt invocation at a time per process: dbt's flags and adapters are global.
_INVOCATION_LOCK = threading.Lock()

#: Levels dbt's console prints at its default ``--log-level info``.
_STREAMED_LEVELS = frozenset({"info", "warn", "error"})

_DONE = object()


class _LineStream:
    """The ``stdout`` of an in-process invocation: JSON lines (bytes) until dbt finishes."""

    def __init__(self) -> None:
        self._lines: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.closed = False

    def put(self, line: bytes) -> None:
        self._lines.put(line)

    def finish(self) -> None:
        self._lines.put(_DONE)

    def __iter__(self) -> Iterator[bytes]:
        while not self.closed:
            line = self._lines.get()
            if line is _DONE:
                self.closed = True
                return
            yield line

    def __enter__(self) -> _LineStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True


class InProcessDbt:
    """``dbt <args>`` in a thread of this process, shaped like the ``subprocess.Popen``
    dagster-dbt's ``DbtCliInvocation`` reads (``stdout``, ``wait``, ``returncode``, ``args``,
    ``send_signal``)."""

    def __init__(self, args: Sequence[str]) -> None:
        self.args = ["dbt", *args]
        self.returncode: int | None = None
        self.stdout = _LineStream()
        self._logged_error = False
        self._dbt_args = list(args)
        self._thread = threading.Thread(target=self._run, name="dbt-in-process", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> int | None:
        self._thread.join(timeout)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """Interrupting the step: cancel the queries dbt is running, so it stops at the next
        node (what SIGINT makes the CLI do)."""
        _cancel_open_connections()

    def _emit(self, msg: Any) -> None:
        from dbt_common.events.functions import msg_to_dict
        from dbt_common.exceptions.base import env_secrets, scrub_secrets

        if msg.info.level not in _STREAMED_LEVELS:
            return
        self._logged_error = self._logged_error or msg.info.level == "error"
        line = json.dumps(msg_to_dict(msg), sort_keys=True, default=str)
        self.stdout.put(scrub_secrets(line, env_secrets()).encode())

    def _run(self) -> None:
        code = 2
        try:
            with _INVOCATION_LOCK:
                from dbt.cli.main import dbtRunner

                try:
                    result = dbtRunner(callbacks=[self._emit]).invoke(self._dbt_args)
                    code = 0 if result.success else (1 if result.exception is None else 2)
                    if result.exception is not None and not self._logged_error:
                        self._emit_error(result.exception)
                finally:
                    _close_duckdb_environment()
        except BaseException as exc:  # reported as the CLI would report it, never lost
            self._emit_error(exc)
        finally:
            self.returncode = code
            self.stdout.finish()

    def _emit_error(self, exc: BaseException) -> None:
        """An error dbt raised without logging it (a usage error, an adapter that failed to
        load): one error-level line, which dagster-dbt quotes in the step's failure."""
        from dbt_common.exceptions.base import env_secrets, scrub_secrets

        text = scrub_secrets(f"{exc.__class__.__name__}: {exc}", env_secrets())
        event = {
            "info": {"name": "MainEncounteredError", "level": "error", "msg": text, "code": ""},
            "data": {"exc": text},
        }
        self.stdout.put(json.dumps(event).encode())


def _close_duckdb_environment() -> None:
    """Close the DuckDB database dbt-duckdb may keep between invocations. It closes the file
    when its last cursor closes, unless a ``keep_open`` profile says otherwise; then only at
    interpreter exit, which for a long-lived process is too late."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter
        return
    with DuckDBConnectionManager._LOCK:
        environment, DuckDBConnectionManager._ENV = DuckDBConnectionManager._ENV, None
    if environment is not None:
        environment.close()


def _cancel_open_connections() -> None:
    """Interrupt the queries of every registered dbt adapter (what dbt does on SIGINT)."""
    from dbt.adapters.factory import FACTORY

    for adapter in list(FACTORY.adapters.values()):
        adapter.cancel_open_connections()
