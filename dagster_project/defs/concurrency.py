"""Concurrency pool names (``deploy/dagster.yaml``: ``pools.default_limit: 1``).

A module of its own so that asset modules can name a pool without importing the jobs in
``pipeline.py`` (which import the ingest assets).
"""

import os

#: steps that open the DuckDB warehouse file (read-write, or read-only beside a writer)
DUCKDB_POOL = "meterworks_duckdb"
#: the dbt step when the models are built by Spark (on DuckDB it is a DuckDB step)
DBT_POOL = "meterworks_dbt"


def dbt_pool() -> str:
    """On DuckDB, dbt writes the warehouse file like any other step; on Spark it does not."""
    engine = os.environ.get("METERWORKS_ENGINE", "duckdb").strip().lower() or "duckdb"
    return DBT_POOL if engine == "spark" else DUCKDB_POOL
