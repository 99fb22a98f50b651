"""The dbt project handle.

``@dbt_assets`` needs ``target/manifest.json`` at import time and a fresh clone has none
(``target/`` is never committed). Importing never parses (no side effects at import): the
``meterworks`` commands and the test session call ``meterworks.jobs.prepare_dbt_manifest``
first, and ``dg dev`` re-parses on every load (``prepare_if_dev``).
"""

import hashlib
import os
import shutil
import time
import uuid
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from meterworks.config import DBT_EXECUTABLE, DBT_PROJECT_DIR, settings
from meterworks.engine import dbt_target

#: The dbt target follows the engine (``METERWORKS_ENGINE``: duckdb, or spark; a cluster sets
#: ``METERWORKS_DBT_TARGET=spark_thrift``). The manifest is parsed for that target: configs such
#: as the usage marts' materialization differ per adapter.
meterworks_dbt_project = DbtProject(
    project_dir=DBT_PROJECT_DIR,
    profiles_dir=DBT_PROJECT_DIR,
    target=dbt_target(),
)

#: Beside the manifest: the target it was parsed for (a different engine re-parses).
MANIFEST_TARGET_FILE = "manifest.target"


PARTIAL_PARSE_FILE = "partial_parse.msgpack"
PARTIAL_PARSE_KEEP = 16
#: Each dbt invocation gets its own target directory (artifacts and logs of that run); the
#: newest are kept for debugging, older ones go once they are an hour old (never one in use).
INVOCATIONS_KEEP = 20
INVOCATION_MAX_AGE_S = 3600


def parse_dbt_project() -> None:
    """``dbt parse`` into the project's target path (profiles.yml reads the warehouse path
    from the environment; parsing never opens the warehouse)."""
    os.environ.setdefault("METERWORKS_WAREHOUSE", str(settings().warehouse))
    dbt = DbtCliResource(project_dir=meterworks_dbt_project, dbt_executable=DBT_EXECUTABLE)
    target = _target_root()
    dbt.cli(["parse", "--quiet"], target_path=target).wait()
    (target / MANIFEST_TARGET_FILE).write_text(meterworks_dbt_project.target or "")
    save_partial_parse(target)


def manifest_target() -> str | None:
    """The dbt target the current manifest was parsed for (None: unknown or no manifest)."""
    marker = _target_root() / MANIFEST_TARGET_FILE
    return marker.read_text().strip() if marker.exists() else None


def _target_root() -> Path:
    """The project's target path, absolute."""
    return Path(meterworks_dbt_project.project_dir) / meterworks_dbt_project.target_path


# dbt's partial parse (re-parsing only the files that changed) is valid only for the profile
# it was saved with, and the profile holds the warehouse path: with several homes on one
# checkout (tests, benchmarks, a dev home) the project's single partial_parse.msgpack keeps
# being invalidated, and every dagster-dbt invocation pays a full parse (~4 CPU-s). So each
# invocation starts from the save file of its own warehouse and leaves its new one there.
def _partial_parse_cache() -> Path:
    warehouse = os.environ.get("METERWORKS_WAREHOUSE") or str(settings().warehouse)
    key = f"{warehouse}\n{meterworks_dbt_project.target}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return _target_root() / "partial_parse" / f"{digest}.msgpack"


def invocation_target_path(name: str) -> Path:
    """A fresh target path for one dbt invocation, seeded with this warehouse's partial-parse
    save file when there is one (dagster-dbt then keeps it instead of the project's)."""
    target = _target_root() / f"{name}-{uuid.uuid4().hex[:12]}"
    target.mkdir(parents=True, exist_ok=True)
    cache = _partial_parse_cache()
    if cache.exists():
        shutil.copyfile(cache, target / PARTIAL_PARSE_FILE)
    return target


def save_partial_parse(target: Path) -> None:
    """Keep ``target``'s partial-parse save file as this warehouse's (atomic replace)."""
    saved = Path(target) / PARTIAL_PARSE_FILE
    if not saved.exists():
        return
    cache = _partial_parse_cache()
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_name(f"{cache.name}.{uuid.uuid4().hex[:8]}.tmp")
    shutil.copyfile(saved, partial)
    os.replace(partial, cache)
    # one file per warehouse (test runs make many): keep the most recently used ones
    kept = sorted(cache.parent.glob("*.msgpack"), key=_mtime, reverse=True)
    for stale in kept[PARTIAL_PARSE_KEEP:]:
        stale.unlink(missing_ok=True)


def prune_invocation_targets(name: str) -> None:
    """Remove old ``<name>-*`` invocation target directories beyond the newest few."""
    runs = sorted(_target_root().glob(f"{name}-*"), key=_mtime, reverse=True)
    cutoff = time.time() - INVOCATION_MAX_AGE_S
    for stale in runs[INVOCATIONS_KEEP:]:
        if stale.is_dir() and _mtime(stale) < cutoff:
            shutil.rmtree(stale, ignore_errors=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


meterworks_dbt_project.prepare_if_dev()
