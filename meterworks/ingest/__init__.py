"""Event ingestion: read files, detect shapes, validate, dedupe, quarantine, commit atomically.

Plain Python on top of DuckDB SQL; knows nothing about Dagster. The contract (raw schema,
event semantics, quarantine reasons) is ``docs/architecture.md``.

    from meterworks.ingest import ingest_files
    result = ingest_files(warehouse_path_or_connection, [path, ...], catalog)
    result.counts()
"""

from meterworks.ingest.core import IngestResult, ingest_files
from meterworks.ingest.files import SUPPORTED_SUFFIXES, IngestError, InputFile, resolve_inputs

__all__ = [
    "SUPPORTED_SUFFIXES",
    "IngestError",
    "IngestResult",
    "InputFile",
    "ingest_files",
    "resolve_inputs",
]
