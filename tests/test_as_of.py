"""``meterworks.as_of()``: every model of one dbt invocation is computed at the same instant.

Without a ``as_of`` var the instant is the invocation's start (``run_started_at``), not each
model's own clock: a long build (minutes on Spark) that crosses a month boundary must not
project invoices in one month and MRR in the next.
"""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from meterworks.config import DBT_EXECUTABLE, DBT_PROJECT_DIR

#: Every model that calls ``meterworks.as_of()`` (read from the models, so a new one is covered).
AS_OF_MODELS = sorted(
    path.stem
    for path in (DBT_PROJECT_DIR / "models").rglob("*.sql")
    if "meterworks.as_of()" in path.read_text()
)
LITERAL = re.compile(r"cast\('(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6})' as timestamp\)")


def _compile(tmp_path: Path, *extra: str) -> dict[str, str]:
    env = {**os.environ, "METERWORKS_WAREHOUSE": str(tmp_path / "compile.duckdb")}
    target = tmp_path / "target"
    subprocess.run(
        [DBT_EXECUTABLE, "compile", "--select", *AS_OF_MODELS, "--target", "duckdb",
         "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
         "--target-path", str(target), "--log-path", str(tmp_path / "logs"), "--quiet", *extra],
        env=env, check=True, cwd=DBT_PROJECT_DIR, capture_output=True,
    )  # fmt: skip
    compiled = target / "compiled" / "meterworks" / "models"
    return {
        path.stem: path.read_text()
        for path in compiled.rglob("*.sql")
        if path.stem in AS_OF_MODELS  # not the models' data tests, also compiled
    }


def test_models_of_one_invocation_share_the_start_instant(tmp_path: Path) -> None:
    before = datetime.now(UTC).replace(tzinfo=None)
    sql = _compile(tmp_path)
    after = datetime.now(UTC).replace(tzinfo=None)
    assert sorted(sql) == AS_OF_MODELS
    instants = {name: set(LITERAL.findall(text)) for name, text in sql.items()}
    assert all(instants.values()), f"a model does not use the as_of literal: {instants}"
    (instant,) = set().union(*instants.values())  # one instant for every as_of model
    assert before <= datetime.fromisoformat(instant) <= after
    assert "current_timestamp" not in " ".join(sql.values()).lower()


def test_the_as_of_var_overrides_the_start_instant(tmp_path: Path) -> None:
    sql = _compile(tmp_path, "--vars", '{"as_of": "2026-03-31 23:59:59"}')
    assert sorted(sql) == AS_OF_MODELS
    for text in sql.values():
        assert "cast('2026-03-31 23:59:59' as timestamp)" in text
        assert not LITERAL.search(text)
