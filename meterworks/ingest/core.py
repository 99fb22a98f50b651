"""``ingest_files``: one batch of files -> one DuckDB transaction.

Pipeline (all in SQL):

1. every file is read and normalised into the temp table ``_mw_rows`` (one row per input row,
   canonical properties computed, a quarantine reason when the row is unusable) -- ``readers``
   + ``normalize``. This touches only connection-local tables, so it runs before the
   transaction;
2. in the batch transaction: a key probe of ``raw.events`` for the batch's transaction ids and
   correction targets (the only read of history): their content, action and ``event_seq``;
3. corrections are resolved (a void copies customer/event/timestamp from its target);
4. ids seen twice in the batch or already stored are classified by comparing their content:
   accepted, duplicate or conflict (first in file order wins; a stored event always wins); all
   others are new;
5. events, quarantine rows and the ``raw.ingest_batches`` row are written and committed.

Count rule: ``rows_read = accepted + duplicates + quarantined``; ``quarantined`` includes the
conflicts, which are also reported alone as ``conflicts`` (and as
``quarantined_by_reason['conflict']``).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from meterworks.catalog import Catalog
from meterworks.ingest.files import IngestError, InputFile, resolve_inputs
from meterworks.ingest.normalize import (
    DOCUMENT_FIELDS,
    content_sql,
    fast_path_ok,
    fast_values_check_select,
    key_set_sample_select,
    normalize_select,
)
from meterworks.ingest.readers import (
    csv_source,
    is_blank_line,
    jsonl_columnar_source,
    jsonl_lines,
    jsonl_sample_source,
    jsonl_source,
    parquet_source,
    q,
)
from meterworks.warehouse import connect, ensure_raw_schema

#: Test hook: ``METERWORKS_FAULT_INJECT=after_events_insert`` kills the process (exit 137)
#: inside the batch transaction, right after the events were inserted and before commit.
FAULT_ENV = "METERWORKS_FAULT_INJECT"

#: Plain JSON Lines files are first read with DuckDB's JSON reader (``jsonl_columnar_source``);
#: a file it cannot read exactly is read line by line. False: always line by line.
COLUMNAR_JSONL = True

#: Property key sets (per file, from a sample) that get the fast canonical-properties path.
MAX_KEY_SETS = 64
KEY_SET_SAMPLE = 20_000

_TEMP_TABLES = (
    "_mw_rows",
    "_mw_csv",
    "_mw_csv_rej",
    "_mw_stored",
    "_mw_targets",
    "_mw_classified",
    "_mw_conflict_kept",
    "_mw_conflict_raw",
    "_mw_suspect_ids",
)

_ROWS_DDL = """
create or replace temp table _mw_rows (
    file_idx INTEGER, line_no BIGINT, raw VARCHAR, shape VARCHAR, transaction_id VARCHAR,
    customer_id VARCHAR, event_name VARCHAR, event_ts TIMESTAMP, props VARCHAR,
    props_sig UBIGINT, action VARCHAR, corrects VARCHAR, reason VARCHAR, detail VARCHAR
)
"""


@dataclass
class IngestResult:
    """What one batch did. ``counts()`` is the summary every caller prints."""

    batch_id: int
    files: list[dict[str, Any]]
    rows_read: int
    accepted: int
    duplicates: int
    conflicts: int
    corrections: int
    quarantined: int
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    first_event_seq: int | None = None
    last_event_seq: int | None = None
    timings: list[tuple[str, float]] = field(default_factory=list, repr=False)
    #: how each file was read: ``jsonl-columnar``, ``jsonl-lines``, ``csv`` or ``parquet``
    readers: list[str] = field(default_factory=list, repr=False)

    def counts(self) -> dict[str, Any]:
        return {
            "files": len(self.files),
            "rows_read": self.rows_read,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "corrections": self.corrections,
            "quarantined": self.quarantined,
            "quarantined_by_reason": dict(self.quarantined_by_reason),
            "seconds": round(self.seconds, 3),
        }


class _Timed:
    """Connection wrapper that records how long each statement took (``result.timings``)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.timings: list[tuple[str, float]] = []

    def execute(self, sql: str, params: Any = None):
        began = time.perf_counter()
        out = self.con.execute(sql, params) if params is not None else self.con.execute(sql)
        label = " ".join(sql.split())[:60]
        self.timings.append((label, time.perf_counter() - began))
        return out


def _utc_naive(value: datetime | None) -> datetime:
    if value is None:
        return datetime.now(UTC).replace(tzinfo=None)
    if value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else exc.__class__.__name__


def ingest_files(
    con_or_path: duckdb.DuckDBPyConnection | str | Path,
    paths: list[Path | str] | Path | str,
    catalog: Catalog,
    now: datetime | None = None,
) -> IngestResult:
    """Ingest ``paths`` (files or directories) as one atomic batch; see the module docstring.

    Raises ``IngestError`` (nothing written) when a file is missing, unsupported or unreadable.
    """
    started = time.perf_counter()
    if isinstance(paths, (str, Path)):
        paths = [paths]
    inputs = resolve_inputs(paths)
    if not inputs:
        raise IngestError(f"no supported input files in {', '.join(map(str, paths)) or '[]'}")
    now_utc = _utc_naive(now)

    own = not isinstance(con_or_path, duckdb.DuckDBPyConnection)
    con = connect(con_or_path) if own else con_or_path
    if own:
        con.execute("set enable_progress_bar = false")
    try:
        ensure_raw_schema(con)
        with ThreadPoolExecutor(max_workers=1) as pool:
            # sha256 (and line counts) of the inputs overlap with the SQL work (hashlib
            # releases the GIL).
            scans = pool.submit(lambda: [file.scan(COLUMNAR_JSONL) for file in inputs])
            return _run_batch(_Timed(con), inputs, catalog, now_utc, started, scans)
    finally:
        if own:
            con.close()


def _run_batch(con, inputs, catalog, now_utc, started, scans) -> IngestResult:
    started_at = datetime.now(UTC).replace(tzinfo=None)
    try:
        # Reading and validating only touches connection-local temp tables, so it runs before
        # the transaction.
        jsonl, readers = _read_files(con, inputs, catalog, now_utc, scans)
        con.execute("begin transaction")
        try:
            columnar = [idx for idx, reader in enumerate(readers) if reader == "jsonl-columnar"]
            _number_jsonl_lines(con, jsonl, columnar)
            _read_raw_lines(con, inputs, columnar)
            result = _batch_in_transaction(con, inputs, catalog, started_at, scans)
            # Dropped before the commit: a big commit checkpoints the temp tables too, i.e.
            # compresses the batch's rows once more only to throw them away (~10% of the CPU).
            _drop_temp_tables(con)
            con.execute("commit")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("rollback")
            raise
    finally:
        _drop_temp_tables(con)
    result.seconds = time.perf_counter() - started
    result.timings = con.timings
    result.readers = readers
    return result


def _drop_temp_tables(con) -> None:
    for table in _TEMP_TABLES:
        with contextlib.suppress(duckdb.Error):
            con.execute(f"drop table if exists {table}")


def _key_sets(con, source: str, skip: str = "false") -> list[tuple[int, list[str]]]:
    """The most common property key sets in a sample of ``source`` that get a fast path in
    ``canonical_props_sql``: ``(props_sig, json_keys)``; rows matching ``skip`` are not part of
    the sample. Only speeds things up: every key set gets the same text on the general path.
    """
    sample = key_set_sample_select(f"select * from ({source}) where not {skip}", KEY_SET_SAMPLE)
    try:
        rows = con.execute(
            f"select props_sig, json_keys(any_value(props)) from ({sample}) "
            f"group by props_sig order by count(*) desc, props_sig limit {MAX_KEY_SETS}"
        ).fetchall()
    except duckdb.Error:
        return []  # a file the sample cannot read fails (or not) in the read itself
    candidates = [(sig, keys) for sig, keys in rows if fast_path_ok(keys)]
    try:
        con.execute(fast_values_check_select(candidates)).fetchall()
        return candidates
    except duckdb.Error:
        # a key set whose JSON paths DuckDB would not take: keep the others
        kept = []
        for candidate in candidates:
            with contextlib.suppress(duckdb.Error):
                con.execute(fast_values_check_select([candidate])).fetchall()
                kept.append(candidate)
        return kept


def _key_json(con, key_sets: list[tuple[int, list[str]]]) -> dict[str, str]:
    """``to_json(key)`` of every key of ``key_sets`` (see ``canonical_props_sql``)."""
    keys = sorted({key for _, ks in key_sets for key in ks})
    if not keys:
        return {}
    rows = con.execute(
        "select k, to_json(k)::VARCHAR from (select unnest(?::VARCHAR[]) as k)", [keys]
    ).fetchall()
    return dict(rows)


def _utc_session(con) -> bool:
    """The connection's TimeZone is UTC (see ``normalize_select(utc_session=...)``)."""
    return _scalar(con, "select current_setting('TimeZone')") in ("UTC", "Etc/UTC")


def _normalize_into_rows(
    con,
    idx: int,
    source: str,
    catalog: Catalog,
    now_utc: datetime,
    skip: str = "false",
    sample: str | None = None,
    parsed: bool = False,
) -> None:
    """Normalise ``source`` into ``_mw_rows``; ``sample`` (default ``source``) is read for the
    common key sets. ``parsed``: see ``normalize_select``."""
    key_sets = _key_sets(con, sample or source, skip)
    key_json = _key_json(con, key_sets)
    document = "s" if parsed else "doc"
    source = f"select {idx} as file_idx, line_no, raw, {document}, keep_raw from ({source})"
    select = normalize_select(
        source,
        catalog,
        now_utc,
        key_sets,
        utc_session=_utc_session(con),
        key_json=key_json,
        parsed=parsed,
    )
    con.execute(f"insert into _mw_rows {select}")


def _read_files(
    con, inputs: list[InputFile], catalog: Catalog, now_utc: datetime, scans
) -> tuple[list[tuple[int, int]], list[str]]:
    """Fill ``_mw_rows``; returns ``(file_idx, first rowid)`` of each JSONL file, whose lines
    are numbered later by ``_number_jsonl_lines``, and how each file was read."""
    con.execute(_ROWS_DDL)
    jsonl, readers = [], []
    for idx, file in enumerate(inputs):
        try:
            if file.format == "csv":
                _read_csv(con, idx, file, catalog, now_utc)
                readers.append("csv")
            elif file.format == "jsonl":
                # Lines go straight into _mw_rows, in file order: a line's number is its
                # position in the file's block of rows (no row is deleted before numbering).
                start = _scalar(con, "select count(*) from _mw_rows")
                if _read_jsonl_columnar(con, idx, file, catalog, now_utc, start, scans):
                    readers.append("jsonl-columnar")
                else:
                    source = jsonl_source(file)
                    _normalize_into_rows(
                        con,
                        idx,
                        source,
                        catalog,
                        now_utc,
                        is_blank_line(),
                        jsonl_sample_source(file),
                    )
                    readers.append("jsonl-lines")
                jsonl.append((idx, start))
            else:
                _normalize_into_rows(con, idx, parquet_source(con, file), catalog, now_utc)
                readers.append("parquet")
        except IngestError:
            raise
        except duckdb.Error as exc:
            raise IngestError(
                f"{file.path}: cannot read as {file.format}: {_one_line(exc)}"
            ) from None
    return jsonl, readers


def _read_jsonl_columnar(
    con, idx: int, file: InputFile, catalog: Catalog, now_utc: datetime, start: int, scans
) -> bool:
    """Normalise a plain JSONL file from DuckDB's JSON reader into ``_mw_rows``; False (and
    nothing left in ``_mw_rows``) when that read would not be exact, see
    ``jsonl_columnar_source``.

    Line numbers are positions, as for the line reader, so every line must have given one
    row: the reader skips blank lines, and the file's line count (``FileScan.lines``, counted
    beside the sha256) tells whether it did. A malformed line deep in a big file costs the
    read that found it.
    """
    if not COLUMNAR_JSONL or file.compressed:
        return False
    # A read that fails is wasted work: a file whose first lines already include a line the
    # JSON reader cannot take exactly goes straight to the line reader.
    first_lines = f"select raw from ({jsonl_sample_source(file)}) limit {KEY_SET_SAMPLE}"
    if _scalar(
        con,
        f"select count(*) from ({first_lines}) where {is_blank_line()} "
        "or json_type(try_cast(raw as JSON)) is distinct from 'OBJECT'",
    ):
        return False
    try:
        _normalize_into_rows(
            con,
            idx,
            jsonl_columnar_source(file, DOCUMENT_FIELDS),
            catalog,
            now_utc,
            is_blank_line(),
            jsonl_sample_source(file),
            parsed=True,
        )
    except duckdb.Error:
        return False  # the insert failed as a whole: nothing of this file is in _mw_rows
    rows = _scalar(con, "select count(*) from _mw_rows") - start
    if rows == scans.result()[idx].lines:
        return True
    # this file's rows are the last ones: keep the others, in order (rowids are positions)
    if start:
        con.execute(
            f"create or replace temp table _mw_rows as from _mw_rows where file_idx < {idx}"
        )
    else:
        con.execute(_ROWS_DDL)
    return False


def _read_raw_lines(con, inputs: list[InputFile], columnar: list[int]) -> None:
    """The raw text of the rows that may be quarantined, for files read by the JSON reader:
    the lines that keep it with the line reader (see ``normalize_select``), read again."""
    for idx in columnar:
        wanted = f"file_idx = {idx} and (reason is not null or action <> 'record')"
        if not _scalar(con, f"select count(*) from _mw_rows where {wanted}"):
            continue
        con.execute(f"""
            update _mw_rows r set raw = l.raw
            from (
                select line_no, raw from ({jsonl_lines(inputs[idx])})
                where line_no in (select line_no from _mw_rows where {wanted})
            ) l
            where r.file_idx = {idx} and r.line_no = l.line_no
        """)


def _number_jsonl_lines(con, jsonl: list[tuple[int, int]], columnar: list[int]) -> None:
    """Line numbers of JSONL rows from their position; then blank lines are dropped.

    Runs inside the batch transaction: the same update in a transaction of its own would have
    its commit checkpoint (compress) all of ``_mw_rows``, which costs more than the update.
    """
    if not jsonl:
        return
    starts = " ".join(f"when {idx} then {start}" for idx, start in jsonl)
    files = ", ".join(str(idx) for idx, _ in jsonl)
    con.execute(f"""
        update _mw_rows set line_no = rowid - case file_idx {starts} end + 1
        where file_idx in ({files})
    """)
    # blank lines are skipped: they were only kept so that positions are line numbers (a file
    # read by the JSON reader has none, and no raw text yet)
    read_by_lines = ", ".join(str(idx) for idx, _ in jsonl if idx not in columnar)
    if read_by_lines:
        con.execute(f"""
            delete from _mw_rows
            where file_idx in ({read_by_lines}) and reason is not null and {is_blank_line()}
        """)


def _read_csv(con, idx: int, file: InputFile, catalog: Catalog, now_utc: datetime) -> None:
    rejects = f"_mw_rejects_{idx}"
    try:
        con.execute(f"create or replace temp table _mw_csv as {csv_source(con, file, rejects)}")
        con.execute(f"""
            create or replace temp table _mw_csv_rej as
            select line, any_value(csv_line) as csv_line, string_agg(error_message, '; ') as msg
            from {rejects} group by line
        """)
        if con.execute("select count(*) from _mw_csv_rej").fetchone()[0] == 0:
            line_no = "row_no + 1"
        else:
            # Physical line of good row r: the header, r good rows and the rejected lines
            # before it; the k-th rejected line l_k (sorted) precedes good row r iff l_k - k <= r.
            line_no = """row_no + 1 + (select count(*) from (
                    select line - row_number() over (order by line) as g from _mw_csv_rej
                ) where g <= row_no)"""
        source = f"select {line_no} as line_no, raw, doc, true as keep_raw from _mw_csv"
        _normalize_into_rows(con, idx, source, catalog, now_utc)
        con.execute(f"""
            insert into _mw_rows (file_idx, line_no, raw, reason, detail)
            select {idx}, line, coalesce(csv_line, ''), 'unreadable_row',
                   'CSV row does not parse: ' || msg
            from _mw_csv_rej
        """)
    finally:
        for table in ("_mw_csv", "_mw_csv_rej", rejects, rejects + "_scan"):
            con.execute(f"drop table if exists {table}")


def _scalar(con, sql: str) -> Any:
    return con.execute(sql).fetchone()[0]


def _batch_in_transaction(con, inputs, catalog, started_at, scans) -> IngestResult:
    batch_id, base_seq, history = con.execute(
        "select coalesce(max(batch_id), 0) + 1, coalesce(max(last_event_seq), 0), "
        "count(last_event_seq) from raw.ingest_batches"
    ).fetchone()
    history = history > 0 or _scalar(con, "select count(*) from raw.events") > 0

    # -- key probe of history: only the ids this batch mentions ---------------------------
    stored_content = content_sql(props="properties", corrects="corrects_transaction_id")
    mentioned = (
        """transaction_id in (
                select transaction_id from _mw_rows where reason is null
                union all
                select corrects from _mw_rows where reason is null and corrects is not null
            )"""
        if history
        else "false"
    )
    con.execute(f"""
        create or replace temp table _mw_stored as
        select transaction_id, {stored_content} as content, action, event_seq
        from raw.events
        where {mentioned}
    """)

    _resolve_corrections(con)

    # -- suspects: ids seen twice in the batch or already stored; everything else is new ----
    con.execute("""
        create or replace temp table _mw_suspect_ids as
        select transaction_id from _mw_rows where reason is null
        group by transaction_id having count(*) > 1
        union
        select transaction_id from _mw_stored
    """)
    n_suspect_ids = _scalar(con, "select count(*) from _mw_suspect_ids")

    # Only what the counts and conflict rows need: accepted rows are inserted from _mw_rows.
    con.execute(f"""
        create or replace temp table _mw_classified as
        with h as (
            select rowid as row_id, file_idx, line_no, raw, transaction_id, customer_id,
                event_name, {content_sql()} as content
            from _mw_rows
            where reason is null
              and transaction_id in (select transaction_id from _mw_suspect_ids)
        ),
        w as (
            select h.*,
                row_number() over win as rn,
                first_value(content) over win as first_content,
                first_value(file_idx) over win as first_file,
                first_value(line_no) over win as first_line
            from h
            window win as (partition by transaction_id order by file_idx, line_no)
        )
        select w.* exclude (content, first_content), s.event_seq as stored_seq,
            case
                when s.transaction_id is not null then
                    case when s.content = w.content then 'duplicate' else 'conflict' end
                when rn = 1 then 'accepted'
                when w.content = first_content then 'duplicate'
                else 'conflict'
            end as status
        from w left join _mw_stored s using (transaction_id)
    """)

    # -- events ----------------------------------------------------------------------------
    # event_seq = base + position of the row in the batch (file offset + line), corrections
    # after all records, so a correction always follows what it corrects. Gaps are normal.
    max_lines = dict(
        con.execute("select file_idx, max(line_no) from _mw_rows group by file_idx").fetchall()
    )
    offsets, total = [], 0
    for idx in range(len(inputs)):
        offsets.append(total)
        total += max_lines.get(idx, 0) or 0
    seq = (
        f"{base_seq} + case when action = 'record' then 0 else {total} end "
        f"+ [{', '.join(map(str, offsets))}][file_idx + 1] + line_no"
    )
    files_sql = "[" + ", ".join(q(str(f.path)) for f in inputs) + "]"
    ingested_at = f"timestamp {q(started_at.isoformat(sep=' '))}"
    columns = (
        f"{seq}, {batch_id}, transaction_id, action, corrects, customer_id, event_name, "
        f"event_ts, props, shape, {files_sql}[file_idx + 1], line_no, {ingested_at}"
    )
    # New rows and the accepted suspects, in one pass. A parallel insert that need not keep
    # file order within the batch (what the anti-join plan below always did): it writes full
    # row groups. The order-preserving plan split the batch at every read chunk into small row
    # groups, which the next checkpoint merged by compressing them all once more (~0.5 CPU-s
    # per million events). A batch's rows stay together either way (event_seq zone maps).
    rows = "from _mw_rows where reason is null"
    if n_suspect_ids:
        rows += " and rowid not in (select row_id from _mw_classified where status <> 'accepted')"
    keep_order = _scalar(con, "select current_setting('preserve_insertion_order')")
    con.execute("set session preserve_insertion_order = false")
    try:
        con.execute(f"insert into raw.events select {columns} {rows}")
    finally:
        con.execute(f"set session preserve_insertion_order = {str(bool(keep_order)).lower()}")

    if os.environ.get(FAULT_ENV) == "after_events_insert":
        os._exit(137)

    # -- quarantine: unusable rows, then conflicts (naming the kept event) -----------------
    con.execute(f"""
        insert into raw.quarantine
        select {batch_id}, {files_sql}[file_idx + 1], line_no, raw, reason, detail,
               transaction_id, customer_id, event_name, now()::TIMESTAMP
        from _mw_rows where reason is not null
        order by file_idx, line_no
    """)
    if _scalar(con, "select count(*) from _mw_classified where status = 'conflict'"):
        _quarantine_conflicts(con, inputs, batch_id, files_sql)

    # -- counts and the batch row ------------------------------------------------------------
    per_file = dict(
        con.execute("select file_idx, count(*) from _mw_rows group by file_idx").fetchall()
    )
    by_reason = dict(
        con.execute(
            "select reason, count(*) from _mw_rows where reason is not null group by reason"
        ).fetchall()
    )
    status = dict(
        con.execute("select status, count(*) from _mw_classified group by status").fetchall()
    )
    accepted, corrections, first_seq, last_seq = con.execute(
        f"select count(*), count(*) filter (where action <> 'record'), min(event_seq), "
        f"max(event_seq) from raw.events where batch_id = {batch_id}"
    ).fetchone()
    if status.get("conflict"):
        by_reason["conflict"] = status["conflict"]
    by_reason = dict(sorted(by_reason.items()))
    rows_read = sum(per_file.values())
    quarantined = sum(by_reason.values())
    duplicates = status.get("duplicate", 0)
    conflicts = status.get("conflict", 0)
    assert rows_read == accepted + duplicates + quarantined, "ingest counts do not reconcile"

    sha = [scan.sha256 for scan in scans.result()]
    files = [
        {
            "path": str(file.path),
            "sha256": sha[idx],
            "bytes": file.bytes,
            "rows": per_file.get(idx, 0),
            "format": file.format + (".gz" if file.compressed else ""),
        }
        for idx, file in enumerate(inputs)
    ]
    con.execute(
        "insert into raw.ingest_batches values (?, ?, now()::TIMESTAMP, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            batch_id,
            started_at,
            json.dumps(files),
            rows_read,
            accepted,
            duplicates,
            conflicts,
            quarantined,
            corrections,
            first_seq,
            last_seq,
        ],
    )
    return IngestResult(
        batch_id=batch_id,
        files=files,
        rows_read=rows_read,
        accepted=accepted,
        duplicates=duplicates,
        conflicts=conflicts,
        corrections=corrections,
        quarantined=quarantined,
        quarantined_by_reason=by_reason,
        first_event_seq=first_seq,
        last_event_seq=last_seq,
    )


def _quarantine_conflicts(con, inputs: list[InputFile], batch_id: int, files_sql: str) -> None:
    # Raw text of conflicting rows: kept for CSV rows; JSONL/Parquet lines are read again
    # (conflicts are rare, and not keeping every line's text halves a big batch's memory).
    con.execute("""
        create or replace temp table _mw_conflict_raw as
        select file_idx, line_no, raw from _mw_classified
        where status = 'conflict' and raw is not null
    """)
    wanted = con.execute(
        "select distinct file_idx from _mw_classified where status = 'conflict' and raw is null"
    ).fetchall()
    for (idx,) in wanted:
        file = inputs[idx]
        reader = jsonl_lines(file) if file.format == "jsonl" else parquet_source(con, file)
        con.execute(f"""
            insert into _mw_conflict_raw
            select {idx}, line_no, raw from ({reader})
            where line_no in (select line_no from _mw_classified
                              where status = 'conflict' and file_idx = {idx})
        """)
    con.execute("""
        create or replace temp table _mw_conflict_kept as
        select e.transaction_id, e.event_seq, e.batch_id, e.source_file, e.source_line
        from raw.events e
        where e.event_seq in (
            select stored_seq from _mw_classified where status = 'conflict'
            and stored_seq is not null)
    """)
    con.execute(f"""
        insert into raw.quarantine
        select {batch_id}, {files_sql}[c.file_idx + 1], c.line_no, r.raw, 'conflict',
            'transaction_id ' || c.transaction_id || ' was already ingested with different '
            || 'content; kept ' || case
                when k.event_seq is not null then 'event_seq ' || k.event_seq || ' (batch '
                    || k.batch_id || ', ' || k.source_file || ' line ' || k.source_line || ')'
                else {files_sql}[c.first_file + 1] || ' line ' || c.first_line
                    || ' (this batch)' end,
            c.transaction_id, c.customer_id, c.event_name, now()::TIMESTAMP
        from _mw_classified c
        join _mw_conflict_raw r using (file_idx, line_no)
        left join _mw_conflict_kept k on k.event_seq = c.stored_seq
        where c.status = 'conflict'
        order by c.file_idx, c.line_no
    """)


def _resolve_corrections(con) -> None:
    """Check every void/amend target; copy customer/event/timestamp into voids."""
    has_corrections = con.execute(
        "select count(*) from _mw_rows where reason is null and action <> 'record'"
    ).fetchone()[0]
    if not has_corrections:
        return
    con.execute("""
        create or replace temp table _mw_targets as
        with wanted as (
            select distinct corrects as k from _mw_rows
            where reason is null and action <> 'record'
        ),
        stored as (
            select e.transaction_id as k, e.action, e.customer_id, e.event_name, e.event_ts
            from raw.events e
            where e.event_seq in (
                select event_seq from _mw_stored where transaction_id in (select k from wanted))
        ),
        in_batch as (
            select transaction_id as k,
                arg_min(action, (file_idx, line_no)) as action,
                arg_min(customer_id, (file_idx, line_no)) as customer_id,
                arg_min(event_name, (file_idx, line_no)) as event_name,
                arg_min(event_ts, (file_idx, line_no)) as event_ts
            from _mw_rows
            where reason is null and transaction_id in (select k from wanted)
            group by transaction_id
        )
        select w.k,
            coalesce(s.action, b.action) as action,
            case when s.k is not null then s.customer_id else b.customer_id end as customer_id,
            case when s.k is not null then s.event_name else b.event_name end as event_name,
            case when s.k is not null then s.event_ts else b.event_ts end as event_ts
        from wanted w
        left join stored s on s.k = w.k
        left join in_batch b on b.k = w.k
    """)
    con.execute("""
        update _mw_rows r set
            reason = case when t.action is null then 'unknown_correction_target'
                          when t.action <> 'record' then 'invalid_correction' end,
            detail = case
                when t.action is null then 'corrects ' || r.corrects
                    || ', which is neither stored nor in this batch'
                when t.action <> 'record' then 'corrects ' || r.corrects || ', which is itself a '
                    || t.action || '; correct the original transaction instead' end
        from _mw_targets t
        where r.reason is null and r.action <> 'record' and r.corrects = t.k
            and (t.action is null or t.action <> 'record')
    """)
    # A void carries no content of its own: it takes the target's customer, event and time.
    con.execute("""
        update _mw_rows r set
            customer_id = t.customer_id, event_name = t.event_name, event_ts = t.event_ts,
            props = '{}', props_sig = NULL
        from _mw_targets t
        where r.reason is null and r.action = 'void' and r.corrects = t.k
    """)
