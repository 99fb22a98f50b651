"""Shared fixtures: an isolated Meterworks home per test, and the dbt manifest Dagster needs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``METERWORKS_HOME`` (and Dagster instance) for one test."""
    home = tmp_path / "home"
    monkeypatch.setenv("METERWORKS_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    monkeypatch.delenv("METERWORKS_CATALOG", raising=False)
    return home


@pytest.fixture(scope="session")
def dbt_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``dbt parse`` once per session (the Dagster definitions cannot load without it)."""
    from meterworks.jobs import prepare_dbt_manifest

    os.environ.setdefault(
        "METERWORKS_WAREHOUSE", str(tmp_path_factory.mktemp("parse") / "parse.duckdb")
    )
    prepare_dbt_manifest()
    from dagster_project.defs.transform.project import meterworks_dbt_project

    return meterworks_dbt_project.manifest_path
