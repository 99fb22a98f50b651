"""Input files: which paths are accepted, their format, and a readable error when not."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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

    def scan(self, count_lines: bool = True) -> FileScan:
        """One read of the file: its sha256 and, for plain JSON Lines (with ``count_lines``),
        its line count. Counting costs ~0.5 CPU-s per GB, with the GIL released (numpy), as
        hashlib does; ``bytes.count`` would cost ~3x that and hold the GIL."""
        digest = hashlib.sha256()
        count_lines = count_lines and self.format == "jsonl" and not self.compressed
        newlines = lone_crs = 0
        last = b""
        try:
            with self.path.open("rb") as handle:
                while chunk := handle.read(_HASH_CHUNK):
                    digest.update(chunk)
                    if count_lines:
                        data = np.frombuffer(chunk, np.uint8)
                        newlines += int(np.count_nonzero(data == 10))
                        if b"\r" in chunk:  # memchr: a CRLF file pays for the pairs below
                            cr = data == 13
                            crlf = cr[:-1] & (data[1:] == 10)
                            lone_crs += int(np.count_nonzero(cr)) - int(np.count_nonzero(crlf))
                            lone_crs -= chunk[-1:] == b"\r"  # may pair with the next chunk
                        if last == b"\r" and chunk[:1] != b"\n":
                            lone_crs += 1
                        last = chunk[-1:]
        except OSError as exc:
            raise IngestError(f"{self.path}: cannot read file: {exc.strerror or exc}") from None
        lone_crs += last == b"\r"  # the file's last byte: no LF follows
        lines = None
        # a lone CR ends a line for the line reader too: leave such a file uncounted
        if count_lines and not lone_crs:
            lines = newlines + (1 if last not in (b"", b"\n") else 0)
        return FileScan(sha256=digest.hexdigest(), lines=lines)


@dataclass(frozen=True)
class FileScan:
    sha256: str
    #: physical lines of a plain JSON Lines file (the last one may lack its newline); None
    #: for other files, and for a file with a CR that is not part of a CRLF
    lines: int | None = None


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
