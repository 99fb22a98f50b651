"""Which engine runs the dbt project: DuckDB (the embedded default) or Apache Spark.

``METERWORKS_ENGINE=duckdb|spark`` chooses. DuckDB builds straight from the warehouse file;
Spark reads the raw tables from the *lake* (``$METERWORKS_HOME/lake``, partitioned Parquet that
could equally be an object-store prefix, see :mod:`meterworks.engine.lake`) and keeps its own
catalog and table files under ``$METERWORKS_HOME/spark``. Ingestion and the Stripe sync always
write the DuckDB ``raw`` schema; the lake export is the hand-off to Spark.
"""

from __future__ import annotations

import os
from pathlib import Path

from meterworks.config import Settings

ENGINES = ("duckdb", "spark")

#: dbt target per engine (``dbt/profiles.yml``); ``spark_thrift`` is the cluster variant of
#: ``spark`` (same SQL, reached through the Spark Thrift Server).
DBT_TARGETS = {"duckdb": "duckdb", "spark": "spark"}


def engine() -> str:
    """The configured engine (``duckdb`` unless ``METERWORKS_ENGINE`` says otherwise)."""
    value = os.environ.get("METERWORKS_ENGINE", "duckdb").strip().lower() or "duckdb"
    if value not in ENGINES:
        raise ValueError(f"METERWORKS_ENGINE must be one of {', '.join(ENGINES)}, not {value!r}")
    return value


def dbt_target(name: str | None = None) -> str:
    """The dbt target of an engine (``METERWORKS_DBT_TARGET`` overrides, e.g. ``spark_thrift``)."""
    explicit = os.environ.get("METERWORKS_DBT_TARGET")
    if explicit:
        return explicit
    return DBT_TARGETS[name or engine()]


def lake_dir(cfg: Settings) -> Path:
    """Where the raw tables are exported for Spark (``METERWORKS_LAKE`` overrides)."""
    explicit = os.environ.get("METERWORKS_LAKE")
    return Path(explicit).expanduser().resolve() if explicit else cfg.home / "lake"


def spark_dir(cfg: Settings) -> Path:
    """Spark's state for this home: metastore (Derby), warehouse (table files), scratch."""
    explicit = os.environ.get("METERWORKS_SPARK_DIR")
    return Path(explicit).expanduser().resolve() if explicit else cfg.home / "spark"


def dbt_env(cfg: Settings) -> dict[str, str]:
    """Environment the dbt profile and macros read, for every engine (absolute paths only)."""
    env = dict(cfg.dbt_env())
    env["METERWORKS_LAKE"] = str(lake_dir(cfg))
    env["METERWORKS_SPARK_DIR"] = str(spark_dir(cfg))
    return env
