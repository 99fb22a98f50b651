"""Per-format readers: each turns one file into rows ``(line_no, raw, doc, keep_raw)`` in SQL.

* ``line_no``: 1-based line (JSONL, CSV) or row (Parquet) number in the file (JSONL: numbered
  by the caller, see ``jsonl_source``).
* ``raw``: the row exactly as read (JSONL: the line; CSV/Parquet: the row as JSON text).
* ``doc``: the text to parse: the JSONL line itself, or for CSV/Parquet the row rebuilt as a
  JSON object in the common field layout (``properties`` parsed, ``properties.<name>`` merged).

Everything after this (shape detection, validation, dedup) is format-independent.
"""

from __future__ import annotations

import duckdb

from meterworks.ingest.files import IngestError, InputFile

#: Columns that hold the event's properties (``properties`` / CloudEvents ``data``): a cell is
#: JSON text; ``properties.<name>`` / ``data.<name>`` columns add one property each.
OBJECT_COLUMNS = ("properties", "data")

# A JSON number (no leading zeros, so ids like "007" stay strings).
JSON_NUMBER_RE = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$"


def q(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def jsonl_source(file: InputFile) -> str:
    """The file's lines as a source with ``line_no`` NULL: the caller numbers them.

    Each line is one VARCHAR (no delimiter, no quoting). The read runs in parallel and an
    insert from it keeps file order, so the rows' position in the table they are inserted into
    is the physical line number (a window ``row_number()`` would make everything downstream
    single-threaded). Blank lines are kept so the positions stay physical: the caller removes
    them after numbering (see ``is_blank_line``).
    """
    return f"""
        select NULL::BIGINT as line_no, raw, raw as doc, false as keep_raw
        from read_csv({q(str(file.path))}, columns={{'raw': 'VARCHAR'}}, header=false,
                      delim=chr(0), quote='', escape='', auto_detect=false,
                      max_line_size=10000000, strict_mode=false,
                      compression={q("gzip" if file.compressed else "none")})
    """


def jsonl_columnar_source(file: InputFile, fields: dict[str, str]) -> str:
    """A plain JSONL file parsed by DuckDB's JSON reader: ``(line_no, raw, keep_raw, s)``, where
    ``s`` is the struct ``normalize`` would get from ``json_transform(doc, fields)``.

    The reader parses the file's buffers in place: on the 10 M-event benchmark file, reading
    and parsing cost ~6 CPU-s against ~10 for ``jsonl_source`` and a transform of each line.
    It is exact only for a clean file, so the read fails (the caller then takes
    ``jsonl_source``) on a line that is not a JSON object, on a repeated top-level key, and
    on a row without any of ``fields``: the reader gives a ``null`` line the same all-NULL
    row as an object without any of them, and only the latter is an object. Blank lines are
    skipped, which the caller sees from the row count. ``raw`` is NULL: the caller reads the
    few lines it needs again (``jsonl_lines``).
    """
    columns = "{" + ", ".join(f"{q(name)}: {q(dtype)}" for name, dtype in fields.items()) + "}"
    struct = ", ".join(f"{ident(name)} := {ident(name)}" for name in fields)
    any_field = ", ".join(
        ident(name) + ("::VARCHAR" if dtype == "JSON" else "") for name, dtype in fields.items()
    )
    return f"""
        select NULL::BIGINT as line_no, NULL::VARCHAR as raw, false as keep_raw,
            case when coalesce({any_field}) is null
                 then error('row without any known field')
                 else struct_pack({struct}) end as s
        from read_ndjson({q(str(file.path))}, columns={columns}, records=true,
                         ignore_errors=false, maximum_object_size=10000000,
                         compression='none')
    """


def jsonl_sample_source(file: InputFile) -> str:
    """``jsonl_source`` for a sample of the first lines (``core._key_sets``): small read
    buffers, so that reading a few thousand lines does not read and split the first 10+ MB of
    the file; a line over 1 MB is left out of the sample."""
    return f"""
        select NULL::BIGINT as line_no, raw, raw as doc, false as keep_raw
        from read_csv({q(str(file.path))}, columns={{'raw': 'VARCHAR'}}, header=false,
                      delim=chr(0), quote='', escape='', auto_detect=false,
                      max_line_size=1048576, buffer_size=1048576, ignore_errors=true,
                      strict_mode=false, compression={q("gzip" if file.compressed else "none")})
    """


def is_blank_line(raw: str = "raw") -> str:
    """SQL: the JSONL line ``raw`` is blank (skipped, not quarantined)."""
    return f"({raw} is null or trim({raw}) = '')"


def jsonl_lines(file: InputFile) -> str:
    """``(line_no, raw)`` of a JSONL file, without staging (to fetch a few lines again)."""
    return f"""
        select row_number() over () as line_no, raw
        from read_csv({q(str(file.path))}, columns={{'raw': 'VARCHAR'}}, header=false,
                      delim=chr(0), quote='', escape='', auto_detect=false,
                      max_line_size=10000000, strict_mode=false,
                      compression={q("gzip" if file.compressed else "none")})
    """


def _object_expr(columns: list[tuple[str, str]], text_cells: bool) -> str:
    """SQL building the common JSON object from a row's columns.

    Top-level columns keep their value; ``properties``/``data`` cells holding JSON text are
    parsed; ``properties.<name>`` columns are merged in (CSV cells that look like JSON numbers
    become numbers, so a CSV export hashes the same as its JSONL twin).
    """
    top: list[str] = []
    nested: dict[str, list[tuple[str, str]]] = {name: [] for name in OBJECT_COLUMNS}
    whole: dict[str, tuple[str, str]] = {}
    for name, dtype in columns:
        prefix, _, rest = name.partition(".")
        if prefix in OBJECT_COLUMNS and rest:
            nested[prefix].append((rest, name))
        elif name in OBJECT_COLUMNS:
            whole[name] = (name, dtype)
        else:
            top.append(name)

    def cell(col: str) -> str:
        if text_cells:
            return (
                f"case when regexp_matches({ident(col)}, {q(JSON_NUMBER_RE)}) "
                f"then {ident(col)}::JSON else to_json({ident(col)}) end"
            )
        return f"to_json({ident(col)})"

    parts = []
    for name in top:
        parts.append(f"{q(name)}, {ident(name)}")
    for name in OBJECT_COLUMNS:
        base = None
        if name in whole:
            col, dtype = whole[name]
            if dtype.upper() in ("VARCHAR", "JSON"):
                # JSON text; when it is not JSON keep the string so validation names it.
                base = f"coalesce(try_cast({ident(col)} as JSON), to_json({ident(col)}))"
            else:
                base = f"to_json({ident(col)})"
        if nested[name]:
            # one patch per column; an empty cell adds nothing (a JSON null would delete the key)
            merged = f"coalesce({base or 'NULL'}, '{{}}'::JSON)"
            for key, col in nested[name]:
                merged = (
                    f"json_merge_patch({merged}, case when {ident(col)} is null then '{{}}'::JSON "
                    f"else json_object({q(key)}, {cell(col)}) end)"
                )
            base = (
                merged
                if base is None
                else (
                    f"case when {base} is null or starts_with({base}::VARCHAR, '{{') "
                    f"then {merged} else {base} end"
                )
            )
        if base is not None:
            parts.append(f"{q(name)}, {base}")
    return f"json_object({', '.join(parts)})" if parts else "json_object()"


def _describe(
    con: duckdb.DuckDBPyConnection, relation: str, file: InputFile
) -> list[tuple[str, str]]:
    try:
        rows = con.execute(f"describe select * from {relation}").fetchall()
    except duckdb.Error as exc:
        raise IngestError(f"{file.path}: cannot read as {file.format}: {_one_line(exc)}") from None
    return [(row[0], row[1]) for row in rows]


def csv_relation(file: InputFile, rejects: str) -> str:
    return (
        f"read_csv({q(str(file.path))}, header=true, all_varchar=true, delim=',', quote='\"', "
        f"escape='\"', store_rejects=true, rejects_table={q(rejects)}, "
        f"rejects_scan={q(rejects + '_scan')}, max_line_size=10000000, "
        f"compression={q('gzip' if file.compressed else 'none')})"
    )


def csv_source(con: duckdb.DuckDBPyConnection, file: InputFile, rejects: str) -> str:
    """Good CSV rows; rejected lines land in the temp table ``rejects`` (see core)."""
    relation = csv_relation(file, rejects)
    columns = _describe(con, relation, file)
    obj = _object_expr(columns, text_cells=True)
    return f"""
        select row_number() over () as row_no, to_json(t)::VARCHAR as raw, {obj} as doc
        from {relation} as t
    """


def parquet_source(con: duckdb.DuckDBPyConnection, file: InputFile) -> str:
    relation = f"read_parquet({q(str(file.path))})"
    columns = _describe(con, relation, file)
    obj = _object_expr(columns, text_cells=False)
    row = "{" + ", ".join(f"{q(name)}: {ident(name)}" for name, _ in columns) + "}"
    return f"""
        select file_row_number + 1 as line_no, to_json({row})::VARCHAR as raw, {obj} as doc,
            false as keep_raw
        from read_parquet({q(str(file.path))}, file_row_number=true)
    """
