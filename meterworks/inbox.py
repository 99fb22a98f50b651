"""The file-drop inbox: which files are waiting, and where they go once ingested.

A file is picked up only when it has a supported extension and has not changed for
``settle_seconds`` (so a half-copied file is not read). Writers that want to be safe drop files
under a temporary name (``*.part`` / ``*.tmp`` / dot-files are ignored) and rename them.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

SUPPORTED_SUFFIXES = (
    ".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz", ".json.gz",
    ".csv", ".csv.gz", ".parquet",
)  # fmt: skip


def is_supported(path: Path) -> bool:
    name = path.name.lower()
    return not name.startswith(".") and name.endswith(SUPPORTED_SUFFIXES)


def pending_files(inbox: Path, settle_seconds: float = 2.0) -> list[Path]:
    """Supported files directly in ``inbox`` that have settled, oldest name first."""
    if not inbox.is_dir():
        return []
    cutoff = time.time() - settle_seconds
    return sorted(
        path
        for path in inbox.iterdir()
        if path.is_file() and is_supported(path) and path.stat().st_mtime <= cutoff
    )


def fingerprint(paths: list[Path]) -> str:
    """A stable key for a set of files (name, size, mtime): the sensor's run key."""
    parts = [f"{p.name}:{p.stat().st_size}:{int(p.stat().st_mtime)}" for p in sorted(paths)]
    return "|".join(parts)


def archive(paths: list[Path], processed_dir: Path, batch_id: int) -> list[Path]:
    """Move ingested files out of the inbox into ``processed/batch-<id>/``.

    Runs after the batch committed; if it is interrupted, the files are simply ingested
    again next time and every event counts as a duplicate, so nothing is double-counted.
    """
    target = processed_dir / f"batch-{batch_id:06d}"
    target.mkdir(parents=True, exist_ok=True)
    moved = []
    for path in paths:
        if path.exists():
            destination = target / path.name
            shutil.move(str(path), destination)
            moved.append(destination)
    return moved
