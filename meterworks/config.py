"""Where Meterworks keeps its state, resolved from the environment.

Every path is made absolute here: dbt runs with ``cwd=dbt/`` and Dagster may run from elsewhere,
so a relative path must never leave this module.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt"
EXAMPLE_CATALOG = REPO_ROOT / "data" / "catalog.example.yml"


def _dbt_executable() -> str:
    """The ``dbt`` installed beside this interpreter, so an un-activated venv still works."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


DBT_EXECUTABLE = _dbt_executable()


@dataclass(frozen=True)
class Settings:
    """Resolved paths for one Meterworks home."""

    home: Path

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def inbox(self) -> Path:
        return self.home / "inbox"

    @property
    def processed(self) -> Path:
        return self.inbox / "processed"

    @property
    def demo_dir(self) -> Path:
        return self.home / "demo"

    @property
    def stripe_exports(self) -> Path:
        """Stripe list exports read when no STRIPE_API_KEY is set (the demo writes them)."""
        return self.home / "stripe"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    @property
    def catalog(self) -> Path:
        explicit = os.environ.get("METERWORKS_CATALOG")
        if explicit:
            return Path(explicit).expanduser().resolve()
        own = self.home / "catalog.yml"
        return own if own.exists() else EXAMPLE_CATALOG

    def ensure_dirs(self) -> None:
        for path in (self.home, self.inbox, self.processed, self.reports):
            path.mkdir(parents=True, exist_ok=True)

    def dbt_env(self) -> dict[str, str]:
        """Environment variables the dbt profile reads."""
        return {"METERWORKS_WAREHOUSE": str(self.warehouse)}


def settings(home: str | os.PathLike[str] | None = None) -> Settings:
    """Settings for ``home``, else ``$METERWORKS_HOME``, else ``./data``."""
    raw = home if home is not None else os.environ.get("METERWORKS_HOME", "data")
    return Settings(home=Path(raw).expanduser().resolve())
