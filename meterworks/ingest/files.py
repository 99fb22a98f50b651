"""Input files: which paths are accepted, their format, and a readable error when not."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

#: File name endings ingestion reads (case-insensitive), longest first where it matters.
SUPPORTED_SUFFIXES: tuple[str, ...] = (
    ".jsonl.gz", ".ndjson.gz", ".json.gz", ".csv.gz",
    ".jsonl", ".ndjson", ".json", ".csv", ".parquet",
)  # fmt: skip

_FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
}

_HASH_CHUNK = 8 << 20


class IngestError(Exception):
    """A batch that cannot be ingested at all (missing/unreadable/unsupported file).

    The message is one line meant for the user; nothing was written to the warehouse.
    Rows that are merely bad never raise: they go to ``raw.quarantine``.
    """


@dataclass(frozen=True)
class InputFile:
    path: Path
    format: str  # jsonl | csv | parquet
    compressed: bool
    bytes: int

    def sha256(self) -> str:
        digest = hashlib.sha256()
        try:
            with self.path.open("rb") as handle:
                while chunk := handle.read(_HASH_CHUNK):
                    digest.update(chunk)
        except OSError as exc:
            raise IngestError(f"{self.path}: cannot read file: {exc.strerror or exc}") from None
        return digest.hexdigest()


def detect_format(path: Path) -> tuple[str, bool] | None:
    """``(format, gzip-compressed)`` from the file name, or None when unsupported."""
    name = path.name.lower()
    compressed = name.endswith(".gz")
    stem = name[:-3] if compressed else name
    for suffix, fmt in _FORMATS.items():
        if stem.endswith(suffix):
            if compressed and fmt == "parquet":
                return None
            return fmt, compressed
    return None


def _check_readable(path: Path, fmt: str, compressed: bool) -> None:
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise IngestError(f"{path}: cannot read file: {exc.strerror or exc}") from None
    if compressed:
        if head[:2] != b"\x1f\x8b":
            raise IngestError(f"{path}: not a gzip file (the name ends in .gz)")
        try:
            with gzip.open(path, "rb") as handle:
                handle.read(1)
        except (OSError, EOFError) as exc:
            raise IngestError(f"{path}: corrupt gzip file: {exc}") from None
    if fmt == "parquet" and head != b"PAR1":
        raise IngestError(f"{path}: not a Parquet file (no PAR1 header)")


def resolve_inputs(paths: list[Path | str] | Path | str) -> list[InputFile]:
    """Expand directories (supported files directly inside, sorted) and check every file.

    Raises ``IngestError`` for a missing path, an unsupported extension, an unreadable file,
    or when nothing is left to read.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    expanded: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            expanded.extend(
                sorted(
                    child
                    for child in path.iterdir()
                    if child.is_file()
                    and not child.name.startswith(".")
                    and detect_format(child) is not None
                )
            )
        elif path.exists():
            expanded.append(path)
        else:
            raise IngestError(f"{path}: no such file or directory")
    inputs: list[InputFile] = []
    for path in expanded:
        detected = detect_format(path)
        if detected is None:
            raise IngestError(
                f"{path}: unsupported file type (expected one of {', '.join(SUPPORTED_SUFFIXES)})"
            )
        fmt, compressed = detected
        _check_readable(path, fmt, compressed)
        inputs.append(InputFile(path.resolve(), fmt, compressed, path.stat().st_size))
    return inputs
