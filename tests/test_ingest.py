"""Ingestion core: formats, shapes, validation, exactly-once, corrections, atomicity."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meterworks.catalog import parse_catalog
from meterworks.ingest import IngestError, IngestResult, ingest_files
from meterworks.warehouse import connect

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
TS = "2025-02-20T10:00:00Z"
TS_EPOCH = 1740045600  # 2025-02-20T10:00:00Z

CATALOG_DATA = {
    "backdating_days": 35,
    "future_tolerance_minutes": 5,
    "meters": [
        {"code": "api_calls", "event": "api_request", "aggregation": "count"},
        {"code": "tokens", "event": "completion", "aggregation": "sum", "property": "tokens",
         "group_by": ["model"]},
        {"code": "storage_gb", "event": "storage_snapshot", "aggregation": "max",
         "property": "gb"},
        {"code": "active_users", "event": "seat_login", "aggregation": "unique_count",
         "property": "user"},
    ],
}  # fmt: skip
CATALOG = parse_catalog(CATALOG_DATA)
REPO = Path(__file__).resolve().parent.parent


def ev(tx: str, customer: str = "acme", event: str = "completion", ts=TS, **props) -> dict:
    if event == "completion" and "tokens" not in props:
        props["tokens"] = 10
    return {"transaction_id": tx, "customer_id": customer, "event": event, "timestamp": ts,
            "properties": props}  # fmt: skip


def write_jsonl(path: Path, rows: list) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


#: marks a test whose outcome could depend on how a JSON Lines file is read (line numbers,
#: quarantined text, blank lines, shapes, timestamps, properties): it runs with both readers
both_jsonl_readers = pytest.mark.both_jsonl_readers


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test reads JSON Lines files with DuckDB's JSON reader, the default; the ones
    marked ``both_jsonl_readers`` also with the line reader, since what a file stores,
    quarantines and counts must not depend on which one read it."""
    if "jsonl_reader" in metafunc.fixturenames:
        both = metafunc.definition.get_closest_marker("both_jsonl_readers") is not None
        readers = ["jsonl-columnar", "jsonl-lines"] if both else ["jsonl-columnar"]
        metafunc.parametrize("jsonl_reader", readers, indirect=True)


@pytest.fixture(autouse=True)
def jsonl_reader(request, monkeypatch) -> str:
    """Which JSON Lines reader the test's ingests use (``core.COLUMNAR_JSONL``)."""
    from meterworks.ingest import core

    monkeypatch.setattr(core, "COLUMNAR_JSONL", request.param == "jsonl-columnar")
    return request.param


@pytest.fixture
def wh(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"


def ingest(wh: Path, paths, now: datetime = NOW) -> IngestResult:
    return ingest_files(wh, paths if isinstance(paths, list) else [paths], CATALOG, now=now)


def query(wh: Path, sql: str) -> list[tuple]:
    con = connect(wh, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def summary(result: IngestResult) -> dict:
    counts = result.counts()
    counts.pop("seconds")
    return counts


def quarantine(wh: Path) -> list[tuple]:
    return query(wh, "select source_line, reason, detail, raw_text from raw.quarantine "
                     "order by batch_id, source_file, source_line")  # fmt: skip


# -- basics ---------------------------------------------------------------------------------


@both_jsonl_readers
def test_canonical_jsonl_rows_are_normalised(tmp_path, wh):
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            ev("t1", tokens=5, model="m1"),
            "",  # blank lines are skipped, not quarantined, and keep line numbers physical
            "   ",
            ev("t2", event="api_request"),
        ],
    )
    result = ingest(wh, path)
    assert summary(result) == {
        "files": 1, "rows_read": 2, "accepted": 2, "duplicates": 0, "conflicts": 0,
        "corrections": 0, "quarantined": 0, "quarantined_by_reason": {},
    }  # fmt: skip
    rows = query(
        wh,
        "select transaction_id, action, customer_id, event_name, event_ts, properties, "
        "source_shape, source_line, batch_id from raw.events order by event_seq",
    )
    assert rows == [
        ("t1", "record", "acme", "completion", datetime(2025, 2, 20, 10), '{"model":"m1","tokens":5}',
         "canonical", 1, 1),
        ("t2", "record", "acme", "api_request", datetime(2025, 2, 20, 10), "{}", "canonical", 4, 1),
    ]  # fmt: skip
    batch = query(wh, "select batch_id, rows_read, accepted, duplicates, conflicts, quarantined, "
                      "corrections, first_event_seq < last_event_seq, files from raw.ingest_batches")  # fmt: skip
    assert batch[0][:8] == (1, 2, 2, 0, 0, 0, 0, True)
    files = json.loads(batch[0][8])
    assert files[0]["rows"] == 2 and files[0]["format"] == "jsonl" and len(files[0]["sha256"]) == 64


def test_same_file_twice_is_all_duplicates(tmp_path, wh):
    path = write_jsonl(tmp_path / "a.jsonl", [ev(f"t{i}") for i in range(5)])
    first = ingest(wh, path)
    second = ingest(wh, path)
    assert (first.accepted, first.duplicates) == (5, 0)
    assert (second.accepted, second.duplicates, second.quarantined) == (0, 5, 0)
    assert second.batch_id == first.batch_id + 1
    assert query(wh, "select count(*), sum(json_extract(properties, '$.tokens')::int) "
                     "from raw.events") == [(5, 50)]  # fmt: skip


def test_overlapping_files_in_one_batch_and_across_batches(tmp_path, wh):
    a = write_jsonl(tmp_path / "a.jsonl", [ev(f"t{i}") for i in range(0, 4)])
    b = write_jsonl(tmp_path / "b.jsonl", [ev(f"t{i}") for i in range(2, 7)])
    c = write_jsonl(tmp_path / "c.jsonl", [ev(f"t{i}") for i in range(5, 9)])
    one = ingest(wh, [a, b])
    assert (one.rows_read, one.accepted, one.duplicates) == (9, 7, 2)
    two = ingest(wh, [c])
    assert (two.rows_read, two.accepted, two.duplicates) == (4, 2, 2)
    assert query(wh, "select count(*), count(distinct transaction_id) from raw.events") == [(9, 9)]
    # the first occurrence (file order as given) is the one stored
    assert query(wh, "select source_file from raw.events where transaction_id = 't3'") == [
        (str(a.resolve()),)
    ]


def test_directory_means_supported_files_sorted(tmp_path, wh):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_jsonl(inbox / "b.jsonl", [ev("t1", tokens=2)])
    write_jsonl(inbox / "a.jsonl", [ev("t1", tokens=1)])
    (inbox / "notes.txt").write_text("ignored")
    result = ingest(wh, inbox)
    assert [Path(f["path"]).name for f in result.files] == ["a.jsonl", "b.jsonl"]
    assert (result.accepted, result.conflicts) == (1, 1)
    assert query(wh, "select properties from raw.events") == [('{"tokens":1}',)]


def test_event_seq_increases_across_batches(tmp_path, wh):
    ingest(wh, write_jsonl(tmp_path / "a.jsonl", [ev("t1"), ev("t2")]))
    ingest(wh, write_jsonl(tmp_path / "b.jsonl", [ev("t3"), ev("t1")]))
    rows = query(
        wh, "select transaction_id, batch_id, event_seq from raw.events order by event_seq"
    )
    assert [r[0] for r in rows] == ["t1", "t2", "t3"]
    assert len({r[2] for r in rows}) == 3
    batches = query(wh, "select first_event_seq, last_event_seq from raw.ingest_batches order by 1")
    assert batches[0][1] < batches[1][0] == batches[1][1]


# -- exactly once: content hash -------------------------------------------------------------


@both_jsonl_readers
def test_conflicting_duplicate_first_wins(tmp_path, wh):
    ingest(wh, write_jsonl(tmp_path / "a.jsonl", [ev("t1", tokens=10)]))
    result = ingest(wh, write_jsonl(tmp_path / "b.jsonl", [ev("t1", tokens=99), ev("t2")]))
    assert summary(result)["conflicts"] == 1
    assert result.quarantined_by_reason == {"conflict": 1}
    assert (result.rows_read, result.accepted, result.duplicates, result.quarantined) == (
        2,
        1,
        0,
        1,
    )
    assert query(wh, "select properties from raw.events where transaction_id = 't1'") == [
        ('{"tokens":10}',)
    ]
    [(line, reason, detail, raw)] = quarantine(wh)
    assert (line, reason) == (1, "conflict")
    assert "t1" in detail and "event_seq" in detail and "a.jsonl line 1" in detail
    assert json.loads(raw)["properties"] == {"tokens": 99}


@both_jsonl_readers
def test_conflict_within_one_batch_names_the_kept_row(tmp_path, wh):
    a = write_jsonl(tmp_path / "a.jsonl", [ev("t1", tokens=1), ev("t1", tokens=1)])
    b = write_jsonl(tmp_path / "b.jsonl", [ev("t1", tokens=2)])
    result = ingest(wh, [a, b])
    assert (result.accepted, result.duplicates, result.conflicts) == (1, 1, 1)
    [(_line, reason, detail, _raw)] = quarantine(wh)
    assert reason == "conflict" and "a.jsonl line 1 (this batch)" in detail


@both_jsonl_readers
def test_hash_ignores_key_order_whitespace_and_null_properties(tmp_path, wh):
    a = tmp_path / "a.jsonl"
    a.write_text(
        '{"transaction_id":"t1","customer_id":"acme","event":"completion",'
        '"timestamp":"2025-02-20T10:00:00Z","properties":{"tokens":5,"model":"m1","x":{"b":1}}}\n'
    )
    b = tmp_path / "b.jsonl"
    b.write_text(
        '{ "properties": { "x": {"b": 1}, "model" : "m1", "tokens": 5, "gone": null },\n'.rstrip()
        + ' "timestamp": "2025-02-20T11:00:00+01:00", "event": "completion", '
        '"customer_id": "acme", "transaction_id": "t1" }\n'
    )
    ingest(wh, a)
    result = ingest(wh, b)
    assert (result.accepted, result.duplicates, result.conflicts) == (0, 1, 0)
    assert query(wh, "select properties from raw.events") == [
        ('{"model":"m1","tokens":5,"x":{"b":1}}',)
    ]


@both_jsonl_readers
def test_same_event_in_every_shape_is_one_event(tmp_path, wh):
    props = {"tokens": 7, "model": "m1"}
    shapes = [
        {"transaction_id": "t1", "customer_id": "acme", "event": "completion",
         "timestamp": TS, "properties": props},
        {"transaction_id": "t1", "external_customer_id": "acme", "code": "completion",
         "timestamp": TS_EPOCH, "properties": {"model": "m1", "tokens": 7}},
        {"event": {"transaction_id": "t1", "external_subscription_id": "acme",
                   "code": "completion", "timestamp": str(TS_EPOCH), "properties": props}},
        {"idempotency_key": "t1", "external_customer_id": "acme", "event_name": "completion",
         "timestamp": "2025-02-20T10:00:00.000Z", "properties": props},
        {"transaction_id": "t1", "customer_id": "acme", "event_type": "completion",
         "timestamp": TS_EPOCH * 1000, "properties": props},
        {"specversion": "1.0", "id": "t1", "source": "svc", "type": "completion",
         "subject": "acme", "time": "2025-02-20T10:00:00Z", "data": props},
    ]  # fmt: skip
    result = ingest(wh, write_jsonl(tmp_path / "shapes.jsonl", shapes))
    assert (result.rows_read, result.accepted, result.duplicates, result.quarantined) == (
        6,
        1,
        5,
        0,
    )


@both_jsonl_readers
@pytest.mark.parametrize(
    ("row", "shape"),
    [
        ({"transaction_id": "s1", "customer_id": "acme", "event": "completion",
          "timestamp": TS, "properties": {"tokens": 3}}, "canonical"),
        ({"transaction_id": "s1", "external_customer_id": "acme", "code": "completion",
          "timestamp": TS_EPOCH, "properties": {"tokens": 3}}, "lago"),
        ({"transaction_id": "s1", "external_subscription_id": "acme", "code": "completion",
          "timestamp": TS_EPOCH, "properties": {"tokens": 3}}, "lago"),
        ({"event": {"transaction_id": "s1", "external_customer_id": "acme",
                    "code": "completion", "timestamp": TS_EPOCH, "properties": {"tokens": 3}}},
         "lago"),
        ({"idempotency_key": "s1", "customer_id": "acme", "event_name": "completion",
          "timestamp": TS, "properties": {"tokens": 3}}, "orb"),
        ({"transaction_id": "s1", "customer_id": "acme", "event_type": "completion",
          "timestamp": TS, "properties": {"tokens": 3}}, "metronome"),
        ({"specversion": "1.0", "id": "s1", "source": "x", "type": "completion",
          "subject": "acme", "time": TS, "data": {"tokens": 3}}, "cloudevents"),
    ],
)  # fmt: skip
def test_each_shape_is_detected(tmp_path, wh, row, shape):
    result = ingest(wh, write_jsonl(tmp_path / "a.jsonl", [row]))
    assert result.accepted == 1, quarantine(wh)
    assert query(wh, "select transaction_id, customer_id, event_name, event_ts, properties, "
                     "source_shape from raw.events") == [
        ("s1", "acme", "completion", datetime(2025, 2, 20, 10), '{"tokens":3}', shape)
    ]  # fmt: skip


@both_jsonl_readers
@pytest.mark.parametrize(
    "ts",
    [TS, "2025-02-20T11:00:00+01:00", "2025-02-20 10:00:00", "2025-02-20T10:00:00.000000Z",
     TS_EPOCH, TS_EPOCH * 1000, str(TS_EPOCH), str(TS_EPOCH * 1000), float(TS_EPOCH)],
)  # fmt: skip
def test_timestamp_forms(tmp_path, wh, ts):
    ingest(wh, write_jsonl(tmp_path / "a.jsonl", [ev("t1", ts=ts)]))
    assert query(wh, "select event_ts from raw.events") == [(datetime(2025, 2, 20, 10),)]


# -- formats --------------------------------------------------------------------------------


def test_gzip_jsonl_and_ndjson(tmp_path, wh):
    gz = tmp_path / "a.jsonl.gz"
    with gzip.open(gz, "wt") as handle:
        handle.write(json.dumps(ev("t1")) + "\n\n" + "{bad\n" + json.dumps(ev("t2")) + "\n")
    nd = write_jsonl(tmp_path / "b.ndjson", [ev("t3")])
    result = ingest(wh, [gz, nd])
    assert (result.rows_read, result.accepted, result.quarantined) == (4, 3, 1)
    assert quarantine(wh)[0][:2] == (3, "invalid_json")
    assert [f["format"] for f in result.files] == ["jsonl.gz", "jsonl"]


def test_csv_properties_json_and_dotted_columns(tmp_path, wh):
    csv = tmp_path / "a.csv"
    csv.write_text(
        "transaction_id,customer_id,event,timestamp,properties,properties.tokens\n"
        'c1,acme,completion,2025-02-20T10:00:00Z,"{""model"": ""m1""}",12\n'
        "c2,acme,api_request,1740045600,,\n"
        'c3,acme,completion,2025-02-20T10:00:00Z,"{""model"": ""m1""}",lots\n'
        "c4,acme,completion\n"
        'c5,acme,completion,2025-02-20T10:00:00Z,"{""tokens"": 4}",\n'
    )
    result = ingest(wh, csv)
    assert summary(result)["quarantined_by_reason"] == {
        "non_numeric_value": 1,
        "unreadable_row": 1,
    }
    assert (result.rows_read, result.accepted) == (5, 3)
    assert query(wh, "select transaction_id, properties, source_line from raw.events "
                     "order by transaction_id") == [
        ("c1", '{"model":"m1","tokens":12}', 2),
        ("c2", "{}", 3),
        ("c5", '{"tokens":4}', 6),
    ]  # fmt: skip
    q = {row[1]: row for row in quarantine(wh)}
    assert q["unreadable_row"][0] == 5 and q["unreadable_row"][3] == "c4,acme,completion"
    assert q["non_numeric_value"][0] == 4 and '"lots"' in q["non_numeric_value"][2]
    assert json.loads(q["non_numeric_value"][3])["transaction_id"] == "c3"


def test_csv_gz_is_a_duplicate_of_its_jsonl_twin(tmp_path, wh):
    ingest(wh, write_jsonl(tmp_path / "a.jsonl", [ev("t1", tokens=12, model="m1")]))
    gz = tmp_path / "a.csv.gz"
    with gzip.open(gz, "wt") as handle:
        handle.write(
            "transaction_id,customer_id,event,timestamp,properties.model,properties.tokens\n"
        )
        handle.write(f"t1,acme,completion,{TS},m1,12\n")
    result = ingest(wh, gz)
    assert (result.accepted, result.duplicates, result.conflicts) == (0, 1, 0)


def test_parquet_with_struct_and_json_text_properties(tmp_path, wh):
    struct_file = tmp_path / "a.parquet"
    pq.write_table(
        pa.table(
            {
                "transaction_id": ["p1", "p2"],
                "customer_id": ["acme", "acme"],
                "event": ["completion", "completion"],
                "timestamp": pa.array(
                    [datetime(2025, 2, 20, 10), datetime(2025, 2, 20, 10)], pa.timestamp("us")
                ),
                "properties": [{"tokens": 1, "model": "m1"}, {"tokens": None, "model": "m1"}],
            }
        ),
        struct_file,
    )
    text_file = tmp_path / "b.parquet"
    pq.write_table(
        pa.table(
            {
                "idempotency_key": ["p1", "p3"],
                "customer_id": ["acme", "acme"],
                "event_name": ["completion", "storage_snapshot"],
                "timestamp": [TS_EPOCH, TS_EPOCH],
                "properties": ['{"model": "m1", "tokens": 1}', '{"gb": 2.5}'],
            }
        ),
        text_file,
    )
    result = ingest(wh, [struct_file, text_file])
    assert summary(result)["quarantined_by_reason"] == {"missing_property": 1}
    assert (result.rows_read, result.accepted, result.duplicates) == (4, 2, 1)
    assert query(wh, "select transaction_id, properties, source_shape, source_line "
                     "from raw.events order by 1") == [
        ("p1", '{"model":"m1","tokens":1}', "canonical", 1),
        ("p3", '{"gb":2.5}', "orb", 2),
    ]  # fmt: skip
    [(line, _reason, _detail, raw)] = quarantine(wh)
    assert line == 2 and json.loads(raw)["transaction_id"] == "p2"


# -- quarantine reasons -----------------------------------------------------------------------

REASON_ROWS = {
    "invalid_json": '{"transaction_id": "q1", ',
    "not_an_object": "[1, 2, 3]",
    "missing_transaction_id": {"customer_id": "acme", "event": "api_request", "timestamp": TS},
    "missing_customer": {"transaction_id": "q4", "event": "api_request", "timestamp": TS},
    "missing_event_name": {"transaction_id": "q5", "customer_id": "acme", "timestamp": TS},
    "missing_timestamp": {"transaction_id": "q6", "customer_id": "acme", "event": "api_request"},
    "invalid_timestamp": ev("q7", event="api_request", ts="yesterday"),
    "invalid_properties": {**ev("q8", event="api_request"), "properties": [1]},
    "unknown_event": ev("q9", event="page_view"),
    "missing_property": ev("q10", event="seat_login"),
    "non_numeric_value": ev("q11", tokens="many"),
    "outside_backdating_window": ev("q12", ts="2025-01-01T00:00:00Z"),
    "timestamp_in_future": ev("q13", ts="2025-03-01T12:10:00Z"),
    "unknown_correction_target": {"transaction_id": "q14", "action": "void", "corrects": "nope"},
    "invalid_correction": {**ev("q15"), "action": "undo", "corrects": "t1"},
}


@both_jsonl_readers
@pytest.mark.parametrize("reason", sorted(REASON_ROWS))
def test_each_quarantine_reason(tmp_path, wh, reason):
    rows = [ev("ok1"), REASON_ROWS[reason], ev("ok2")]
    result = ingest(wh, write_jsonl(tmp_path / "a.jsonl", rows))
    assert summary(result)["quarantined_by_reason"] == {reason: 1}
    assert (result.rows_read, result.accepted, result.quarantined) == (3, 2, 1)
    [(line, got, detail, raw)] = quarantine(wh)
    assert (line, got) == (2, reason)
    assert detail and raw == (
        REASON_ROWS[reason] if isinstance(REASON_ROWS[reason], str)
        else json.dumps(REASON_ROWS[reason])
    )  # fmt: skip


@both_jsonl_readers
def test_all_reasons_in_one_batch_reconcile(tmp_path, wh):
    ingest(wh, write_jsonl(tmp_path / "seed.jsonl", [ev("dup", tokens=1)]))
    rows = [*REASON_ROWS.values(), ev("dup", tokens=2), ev("dup", tokens=1), ev("ok")]
    result = ingest(wh, write_jsonl(tmp_path / "a.jsonl", rows))
    expected = {reason: 1 for reason in REASON_ROWS} | {"conflict": 1}
    assert result.quarantined_by_reason == dict(sorted(expected.items()))
    assert result.rows_read == result.accepted + result.duplicates + result.quarantined
    assert (result.accepted, result.duplicates, result.conflicts) == (1, 1, 1)
    assert query(wh, "select count(*) from raw.quarantine") == [(len(expected),)]
    assert query(
        wh, "select quarantined, conflicts from raw.ingest_batches where batch_id = 2"
    ) == [(len(expected), 1)]


def test_meter_filters_limit_property_requirements(tmp_path, wh):
    data = dict(CATALOG_DATA)
    data["meters"] = [
        {"code": "gpu", "event": "job", "aggregation": "sum", "property": "gpu_seconds",
         "filters": {"kind": ["gpu"]}},
        {"code": "jobs", "event": "job", "aggregation": "count"},
    ]  # fmt: skip
    catalog = parse_catalog(data)
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [ev("j1", event="job", kind="cpu"), ev("j2", event="job", kind="gpu"),
         ev("j3", event="job", kind="gpu", gpu_seconds="12.5")],
    )  # fmt: skip
    result = ingest_files(wh, [path], catalog, now=NOW)
    assert result.quarantined_by_reason == {"missing_property": 1}
    assert quarantine(wh)[0][0] == 2


# -- corrections ------------------------------------------------------------------------------

EFFECTIVE_SQL = """
    with v as (
        select coalesce(corrects_transaction_id, transaction_id) as tx, *,
               row_number() over (partition by coalesce(corrects_transaction_id, transaction_id)
                                  order by event_seq desc) as rn
        from raw.events
    )
    select tx, customer_id, json_extract(properties, '$.tokens')::int as tokens
    from v where rn = 1 and action <> 'void' order by tx
"""


@both_jsonl_readers
def test_void_and_amend(tmp_path, wh):
    ingest(wh, write_jsonl(tmp_path / "a.jsonl", [ev("t1", tokens=10), ev("t2", customer="beta", tokens=20)]))  # fmt: skip
    corrections = write_jsonl(
        tmp_path / "b.jsonl",
        [
            {**ev("t1-fix", tokens=7), "action": "amend", "corrects": "t1"},
            {"transaction_id": "t2-void", "action": "void", "corrects": "t2"},
            # a void for an event of the same batch, written before its target
            {"transaction_id": "t3-void", "action": "void", "corrects": "t3"},
            ev("t3", tokens=30),
        ],
    )
    result = ingest(wh, corrections)
    assert (result.accepted, result.corrections, result.quarantined) == (4, 3, 0)
    rows = query(
        wh,
        "select transaction_id, action, corrects_transaction_id, customer_id, event_name, "
        "event_ts, properties from raw.events order by event_seq",
    )
    t = datetime(2025, 2, 20, 10)
    assert rows == [
        ("t1", "record", None, "acme", "completion", t, '{"tokens":10}'),
        ("t2", "record", None, "beta", "completion", t, '{"tokens":20}'),
        ("t3", "record", None, "acme", "completion", t, '{"tokens":30}'),
        ("t1-fix", "amend", "t1", "acme", "completion", t, '{"tokens":7}'),
        ("t2-void", "void", "t2", "beta", "completion", t, "{}"),
        ("t3-void", "void", "t3", "acme", "completion", t, "{}"),
    ]
    assert query(wh, EFFECTIVE_SQL) == [("t1", "acme", 7)]
    # replaying the corrections changes nothing
    again = ingest(wh, corrections)
    assert (again.accepted, again.duplicates) == (0, 4)
    assert query(wh, EFFECTIVE_SQL) == [("t1", "acme", 7)]


@both_jsonl_readers
def test_correction_of_a_correction_is_rejected(tmp_path, wh):
    ingest(wh, write_jsonl(tmp_path / "a.jsonl", [
        ev("t1"), {**ev("t1-fix", tokens=3), "action": "amend", "corrects": "t1"}]))  # fmt: skip
    result = ingest(wh, write_jsonl(tmp_path / "b.jsonl", [
        {"transaction_id": "v", "action": "void", "corrects": "t1-fix"}]))  # fmt: skip
    assert result.quarantined_by_reason == {"invalid_correction": 1}
    assert "itself a amend" in quarantine(wh)[0][2]


# -- atomicity ------------------------------------------------------------------------------

CRASH_SCRIPT = textwrap.dedent(
    """
    import sys
    from datetime import datetime, UTC
    sys.path.insert(0, {repo!r})
    from meterworks.catalog import parse_catalog
    from meterworks.ingest import ingest_files
    catalog = parse_catalog({catalog!r})
    ingest_files({wh!r}, {paths!r}, catalog, now=datetime(2025, 3, 1, 12, tzinfo=UTC))
    print("committed")
    """
)


def test_crash_inside_the_batch_leaves_nothing_and_retry_gives_exact_totals(tmp_path, wh):
    first = write_jsonl(tmp_path / "a.jsonl", [ev(f"t{i}", tokens=i) for i in range(1, 101)])
    ingest(wh, first)  # some history before the crash
    batch = [
        write_jsonl(tmp_path / "b.jsonl", [ev(f"t{i}", tokens=i) for i in range(50, 201)]),
        write_jsonl(
            tmp_path / "c.jsonl", ["not json", ev("t150", tokens=0), ev("t999", event="x")]
        ),
    ]
    script = CRASH_SCRIPT.format(
        repo=str(REPO), catalog=CATALOG_DATA, wh=str(wh), paths=[str(p) for p in batch]
    )
    env = {**os.environ, "METERWORKS_FAULT_INJECT": "after_events_insert"}
    crashed = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True
    )
    assert crashed.returncode == 137, crashed.stderr
    assert "committed" not in crashed.stdout
    state = "select (select count(*) from raw.events), (select count(*) from raw.quarantine), " \
            "(select count(*) from raw.ingest_batches), (select sum(json_extract(properties, " \
            "'$.tokens')::int) from raw.events)"  # fmt: skip
    assert query(wh, state) == [(100, 0, 1, 5050)]

    env.pop("METERWORKS_FAULT_INJECT")
    retried = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True
    )
    assert retried.returncode == 0, retried.stderr
    assert query(wh, state) == [(200, 3, 2, sum(range(1, 201)))]
    assert query(wh, "select rows_read, accepted, duplicates, conflicts, quarantined "
                     "from raw.ingest_batches where batch_id = 2") == [(154, 100, 51, 1, 3)]  # fmt: skip


# -- errors ---------------------------------------------------------------------------------


def test_ingest_errors_are_one_line_and_write_nothing(tmp_path, wh):
    good = write_jsonl(tmp_path / "a.jsonl", [ev("t1")])
    bad_gz = tmp_path / "b.jsonl.gz"
    bad_gz.write_bytes(b"not gzip")
    bad_parquet = tmp_path / "c.parquet"
    bad_parquet.write_text("nope")
    cases = {
        tmp_path / "missing.jsonl": "no such file",
        tmp_path / "a.xlsx": "unsupported file type",
        bad_gz: "not a gzip file",
        bad_parquet: "not a Parquet file",
    }
    (tmp_path / "a.xlsx").write_text("x")
    for path, message in cases.items():
        with pytest.raises(IngestError, match=message) as info:
            ingest(wh, [good, path])
        assert "\n" not in str(info.value) and str(path.name) in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(IngestError, match="no supported input files"):
        ingest(wh, tmp_path / "empty")
    assert not wh.exists()


def test_connection_can_be_passed_and_stays_usable(tmp_path, wh):
    con = connect(wh)
    result = ingest_files(con, [write_jsonl(tmp_path / "a.jsonl", [ev("t1")])], CATALOG, now=NOW)
    assert result.accepted == 1
    assert con.execute("select count(*) from raw.events").fetchone() == (1,)
    tables = con.execute("select table_name from duckdb_tables() where temporary").fetchall()
    assert tables == []
    con.close()


def test_default_now_is_current_time(tmp_path, wh):
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = ingest_files(wh, [write_jsonl(tmp_path / "a.jsonl", [ev("t1", ts=now), ev("t2")])],
                          CATALOG)  # fmt: skip
    assert result.quarantined_by_reason == {"outside_backdating_window": 1}


# -- canonical form pins ----------------------------------------------------------------------

# The stored canonical properties decide duplicate vs conflict across batches (a redelivery is
# compared with what was stored), so the canonical text of an input must never drift: these are
# the values the format has today.
PINNED_PROPERTIES = {
    # name: (properties as sent, canonical text)
    "sorted": ('{"model":"m1","tokens":5}', '{"model":"m1","tokens":5}'),
    "unsorted": ('{"tokens":5,"model":"m1"}', '{"model":"m1","tokens":5}'),
    "spaces": ('{ "tokens" : 5 ,\t"model" : "m1" }', '{"model":"m1","tokens":5}'),
    "null_dropped": ('{"tokens":5,"gone":null,"model":"m1"}', '{"model":"m1","tokens":5}'),
    "null_text": ('{"tokens":5,"c":"null","model":"nullable"}',
                  '{"c":"null","model":"nullable","tokens":5}'),
    "nested": ('{"tokens":5,"z":{"b":1,"a":[3,2,{"y":null,"x":1}]},"a":[],"m":{}}',
               '{"a":[],"m":{},"tokens":5,"z":{"b":1,"a":[3,2,{"y":null,"x":1}]}}'),
    "number_string": ('{"tokens":"5","model":5}', '{"model":5,"tokens":"5"}'),
    "number_forms": ('{"tokens":5.0,"big":12345678901234567890,"e":1e5,"neg":-0.0,"f":1.50,"i":-7}',
                     '{"big":12345678901234567890,"e":100000.0,"f":1.5,"i":-7,"neg":-0.0,'
                     '"tokens":5.0}'),
    "unicode": ('{"tokens":5,"\\u00fc":"h\\u00e9llo \\u2713 \\ud83d\\ude00",'
                '"Z":"\\u00e9\\n\\"q\\"","model":"\\u2603"}',
                '{"Z":"é\\n\\"q\\"","model":"☃","tokens":5,"ü":"héllo ✓ 😀"}'),
    "unicode_raw": ('{"tokens":5,"ü":"héllo ✓ 😀","model":"日本"}',
                    '{"model":"日本","tokens":5,"ü":"héllo ✓ 😀"}'),
    "escapes": ('{"tokens":5,"s":"a\\/b","t":"\\t\\u0001","k\\"q":1}',
                '{"k\\"q":1,"s":"a/b","t":"\\t\\u0001","tokens":5}'),
    "bools": ('{"tokens":5,"b":true,"a":false}', '{"a":false,"b":true,"tokens":5}'),
    "key_order": ('{"tokens":5,"_k":4,"1":5,"model":"m","Z":1,"a b":2}',
                  '{"1":5,"Z":1,"_k":4,"a b":2,"model":"m","tokens":5}'),
    "empty": ("{}", "{}"),
    "null_props": ("null", "{}"),
}  # fmt: skip
PINNED_OTHER = {
    # transaction_id: (line, canonical text): timestamps, shapes, corrections
    "ts_epoch_s": ('{"transaction_id":"ts_epoch_s","customer_id":"acme","event":"completion",'
                   '"timestamp":1740045600,"properties":{"tokens":1}}', '{"tokens":1}'),
    "ts_epoch_ms": ('{"transaction_id":"ts_epoch_ms","customer_id":"acme","event":"completion",'
                    '"timestamp":1740045600123,"properties":{"tokens":1}}', '{"tokens":1}'),
    "ts_frac": ('{"transaction_id":"ts_frac","customer_id":"acme","event":"completion",'
                '"timestamp":"2025-02-20T10:00:00.123456789Z","properties":{"tokens":1}}',
                '{"tokens":1}'),
    "ts_offset": ('{"transaction_id":"ts_offset","customer_id":"acme","event":"completion",'
                  '"timestamp":"2025-02-20T11:00:00.5+01:00","properties":{"tokens":1}}',
                  '{"tokens":1}'),
    "lago_wrapped": ('{"event":{"transaction_id":"lago_wrapped","external_customer_id":"acme",'
                     '"code":"completion","timestamp":"1740045600.25",'
                     '"properties":{"tokens":2,"model":"m"}}}', '{"model":"m","tokens":2}'),
    "cloudevent": ('{"specversion":"1.0","id":"cloudevent","source":"x","type":"completion",'
                   '"subject":"acme","time":"2025-02-20T10:00:00Z",'
                   '"data":{"tokens":3,"model":"m"}}', '{"model":"m","tokens":3}'),
    "void1": ('{"transaction_id":"void1","action":"void","corrects":"sorted"}', "{}"),
    "amend1": ('{"transaction_id":"amend1","action":"AMEND","corrects":"unsorted",'
               '"customer_id":"acme","event":"completion","timestamp":"2025-02-20T10:00:00Z",'
               '"properties":{"tokens":6,"model":"m1"}}', '{"model":"m1","tokens":6}'),
}  # fmt: skip


def _pinned_lines() -> list[str]:
    lines = []
    for name, (props, _canonical) in PINNED_PROPERTIES.items():
        event = "completion" if "tokens" in props else "api_request"
        lines.append(f'{{"transaction_id":"{name}","customer_id":"acme","event":"{event}",'
                     f'"timestamp":"{TS}","properties":{props}}}')  # fmt: skip
    return lines + [line for line, _canonical in PINNED_OTHER.values()]


def _pinned_expected() -> list[tuple]:
    rows = [(name, c) for name, (_p, c) in PINNED_PROPERTIES.items()]
    return rows + [(tx, c) for tx, (_line, c) in PINNED_OTHER.items()]


@both_jsonl_readers
@pytest.mark.parametrize("crowded_out", [False, True])
def test_canonical_properties_are_pinned(tmp_path, wh, crowded_out):
    """Byte-identical canonical text, whether or not a row's key set is among the
    batch's most common ones (64 filler key sets, 8 rows each, crowd the tricky ones out)."""
    filler = []
    if crowded_out:
        filler = [json.dumps(ev(f"f{i}_{j}", event="api_request", **{f"f{i}": 1}))
                  for i in range(64) for j in range(8)]  # fmt: skip
    result = ingest(wh, write_jsonl(tmp_path / "a.jsonl", filler + _pinned_lines()))
    assert (result.quarantined, result.corrections) == (0, 2), quarantine(wh)
    got = query(wh, "select transaction_id, properties from raw.events "
                    "where transaction_id not like 'f%' order by event_seq")  # fmt: skip
    assert got == _pinned_expected()


def _filler(crowded_out: bool) -> list[str]:
    """64 key sets x 8 rows that crowd the following rows' key sets out of the sampled fast
    paths, so those rows take the general path."""
    if not crowded_out:
        return []
    return [json.dumps(ev(f"f{i}_{j}", event="api_request", **{f"f{i}": 1}))
            for i in range(64) for j in range(8)]  # fmt: skip


def _props_lines(cases: list[tuple[str, str]], copies: int = 1) -> list[str]:
    return [
        f'{{"transaction_id":"{tx}{"" if n == 0 else f"_{n}"}","customer_id":"acme",'
        f'"event":"completion","timestamp":"{TS}","properties":{props}}}'
        for tx, props in cases
        for n in range(copies)
    ]


@both_jsonl_readers
@pytest.mark.parametrize("crowded_out", [False, True])
def test_duplicate_property_keys_are_pinned(tmp_path, wh, crowded_out):
    """A repeated key gets one canonical form whether or not its key set is sampled (the
    rare-key-set path used to fail the whole batch on a NOT NULL constraint): the members as
    written when the keys' first occurrences are in order, else each key once (first value)."""
    cases = [
        ("d1", '{"tokens":5,"model":"a","model":"b"}'),
        ("d2", '{"a":1,"a":2,"tokens":5}'),
        ("d3", '{"a":1,"tokens":5,"a":2}'),
        ("d4", '{"tokens":5,"a":1,"a":2}'),
        ("d5", '{"b":{"x":1},"a":[1],"b":2,"tokens":5}'),
        # with a null value (never a fast path): null members dropped
        ("d6", '{"a":1,"a":null,"tokens":5}'),
        ("d7", '{"tokens":5,"a":null,"a":2}'),
    ]
    result = ingest(
        wh, write_jsonl(tmp_path / "a.jsonl", _filler(crowded_out) + _props_lines(cases))
    )
    assert result.quarantined == 0, quarantine(wh)
    got = query(wh, "select transaction_id, properties from raw.events "
                    "where transaction_id like 'd%' order by event_seq")  # fmt: skip
    assert got == [
        ("d1", '{"model":"a","tokens":5}'),
        ("d2", '{"a":1,"a":2,"tokens":5}'),
        ("d3", '{"a":1,"tokens":5,"a":2}'),
        ("d4", '{"a":1,"tokens":5}'),
        ("d5", '{"a":[1],"b":{"x":1},"tokens":5}'),
        ("d6", '{"a":1,"tokens":5}'),
        ("d7", '{"tokens":5}'),
    ]


@both_jsonl_readers
@pytest.mark.parametrize("crowded_out", [False, True])
def test_property_keys_differing_only_by_case_are_kept(tmp_path, wh, crowded_out):
    """Keys that differ only by case are distinct keys: the row is ingested with both
    (``Model`` and ``model`` used to fail the whole file when their key set was sampled: DuckDB
    struct field names are case-insensitive). So are the empty key and keys with a backslash
    (no JSON path addresses them; they take the general path)."""
    cases = [
        ("k1", '{"tokens":5,"model":"b","Model":"a"}'),
        ("k2", '{"Model":"a","model":"b","tokens":5}'),
        ("k3", '{"tokens":5,"":1}'),
        ("k4", r'{"tokens":5,"a\\\\b":1,"a\\b":2}'),  # keys a\\b and a\b
        ("k5", '{"tokens":5,"K":1,"k":2,"\u212a":3}'),
    ]
    # five copies of each: sampled key sets unless crowded out
    lines = _filler(crowded_out) + _props_lines(cases, copies=5)
    result = ingest(wh, write_jsonl(tmp_path / "a.jsonl", lines))
    assert (result.accepted, result.quarantined) == (len(lines), 0), quarantine(wh)
    got = query(wh, "select distinct transaction_id[:2], properties from raw.events "
                    "where transaction_id like 'k%' order by 1")  # fmt: skip
    assert got == [
        ("k1", '{"Model":"a","model":"b","tokens":5}'),
        ("k2", '{"Model":"a","model":"b","tokens":5}'),
        ("k3", '{"":1,"tokens":5}'),
        ("k4", r'{"a\\\\b":1,"a\\b":2,"tokens":5}'),
        ("k5", '{"K":1,"k":2,"tokens":5,"\u212a":3}'),
    ]
    same = query(wh, "select count(distinct properties) from raw.events "
                     "where transaction_id like 'k1%' or transaction_id like 'k2%'")  # fmt: skip
    assert same == [(1,)]


def test_common_key_sets_take_the_fast_path(tmp_path):
    """The sampled key sets keep their fast path (a regression here costs CPU, not results)."""
    from meterworks.ingest.core import _key_sets, _Timed
    from meterworks.ingest.files import resolve_inputs
    from meterworks.ingest.readers import is_blank_line, jsonl_source

    lines = _props_lines([("s", '{"tokens":5,"model":"m"}'), ("u", '{"model":"m","tokens":5}'),
                          ("r", '{"tokens":5,"model":"a","model":"b"}')], copies=3)  # fmt: skip
    path = write_jsonl(tmp_path / "a.jsonl", lines)
    source = f"select 0 as file_idx, line_no, raw, doc, keep_raw from ({jsonl_source(resolve_inputs([path])[0])})"
    con = connect(tmp_path / "w.duckdb")
    try:
        key_sets = _key_sets(_Timed(con), source, is_blank_line())
    finally:
        con.close()
    # the repeated key takes the general path
    assert sorted(keys for _sig, keys in key_sets) == [["model", "tokens"], ["tokens", "model"]]


@both_jsonl_readers
@pytest.mark.parametrize(
    ("ts", "reason"),
    [("infinity", "invalid_timestamp"), ("-infinity", "invalid_timestamp"),
     ("epoch", "outside_backdating_window"), ("2025-02-20 11:00:00 Europe/Berlin", None)],
)  # fmt: skip
def test_timestamp_edge_cases(tmp_path, wh, ts, reason):
    result = ingest(wh, write_jsonl(tmp_path / "a.jsonl", [ev("t1", ts=ts)]))
    assert result.quarantined_by_reason == ({reason: 1} if reason else {})
    if reason is None:
        assert query(wh, "select event_ts from raw.events") == [(datetime(2025, 2, 20, 10),)]


def test_normalize_plan_has_no_join():
    """Line numbers are the rows' positions in the order the normalising insert writes them:
    its plan must stream the file, with no join (DuckDB plans ``x IN (five or more
    constants)`` and ``list_contains`` of a constant list as joins)."""
    import duckdb

    from meterworks.ingest.normalize import DOCUMENT_FIELDS, normalize_select

    data = dict(CATALOG_DATA)
    data["meters"] = [*CATALOG_DATA["meters"],
                      {"code": "gpu", "event": "job", "aggregation": "sum", "property": "gpu_s",
                       "filters": {"kind": [f"k{i}" for i in range(8)]}},
                      *[{"code": f"c{i}", "event": f"e{i}", "aggregation": "count"}
                        for i in range(8)]]  # fmt: skip
    key_sets = [(1000 + i, [f"a{i}", "b", "c"]) for i in range(32)]  # sorted
    key_sets += [(2000 + i, ["z", f"a{i}"]) for i in range(32)]  # not sorted
    source = (
        "select 0 as file_idx, NULL::BIGINT as line_no, '' as raw, '' as doc, false as keep_raw"
    )
    parsed = (
        "select 0 as file_idx, NULL::BIGINT as line_no, '' as raw, false as keep_raw, "
        f"json_transform('{{}}', '{json.dumps(DOCUMENT_FIELDS)}') as s"
    )
    for utc in (False, True):
        for src, is_parsed in ((source, False), (parsed, True)):
            sql = normalize_select(
                src, parse_catalog(data), NOW, key_sets, utc_session=utc, parsed=is_parsed
            )
            plan = duckdb.connect().execute(f"explain {sql}").fetchall()[0][1]
            assert "join" not in plan.lower()


def test_session_settings_are_left_as_found(tmp_path, wh):
    con = connect(wh)
    try:
        ingest_files(con, [write_jsonl(tmp_path / "a.jsonl", [ev("t1")])], CATALOG, now=NOW)
        assert con.execute("select current_setting('preserve_insertion_order')").fetchone() == (
            True,
        )
    finally:
        con.close()


def test_parquet_and_csv_twins_store_the_pinned_text(tmp_path, wh):
    table = tmp_path / "a.parquet"
    pq.write_table(
        pa.table({
            "transaction_id": ["unsorted"], "customer_id": ["acme"], "event": ["completion"],
            "timestamp": pa.array([datetime(2025, 2, 20, 10)], pa.timestamp("us")),
            "properties": [{"tokens": 5, "model": "m1"}],
        }),
        table,
    )  # fmt: skip
    csv = tmp_path / "b.csv"
    csv.write_text(
        "transaction_id,customer_id,event,timestamp,properties.tokens,properties.model\n"
        f"unsorted_csv,acme,completion,{TS},5,m1\n"
    )
    ingest(wh, [table, csv])
    assert query(wh, "select transaction_id, properties from raw.events "
                     "order by event_seq") == [
        ("unsorted", '{"model":"m1","tokens":5}'),
        ("unsorted_csv", '{"model":"m1","tokens":5}'),
    ]  # fmt: skip


def test_a_warehouse_that_stored_content_hashes_is_migrated(tmp_path, wh):
    """Warehouses written before content comparison kept an MD5 ``content_hash`` column: the
    next ingest drops it, and redeliveries of its events are still told apart by content."""
    first = ingest(wh, write_jsonl(tmp_path / "a.jsonl", [ev("t1", tokens=5), ev("t2", tokens=7)]))
    assert first.accepted == 2
    con = connect(wh)
    try:  # the old layout: the column between properties and source_shape, filled
        con.execute("alter table raw.events add column content_hash ubigint default 42")
    finally:
        con.close()
    again = ingest(
        wh,
        write_jsonl(tmp_path / "b.jsonl", [ev("t1", tokens=5), ev("t2", tokens=8), ev("t3")]),
    )
    assert (again.accepted, again.duplicates, again.conflicts) == (1, 1, 1)
    columns = [row[0] for row in query(wh, "describe raw.events")]
    assert "content_hash" not in columns
    assert query(wh, "select transaction_id, properties from raw.events order by event_seq") == [
        ("t1", '{"tokens":5}'),
        ("t2", '{"tokens":7}'),
        ("t3", '{"tokens":10}'),
    ]


def test_transaction_ids_are_stored_with_zstd(tmp_path, wh):
    """Unique per event: zstd, not the dictionary/FSST analysis DuckDB would run on every
    ingested row (a third of the raw write's CPU at 10 M events, see warehouse.RAW_DDL)."""
    ingest(wh, write_jsonl(tmp_path / "a.jsonl", [ev(f"t{i}") for i in range(3000)]))
    con = connect(wh)
    try:
        con.execute("checkpoint")
        methods = con.execute(
            "select distinct compression from pragma_storage_info('raw.events') "
            "where column_name = 'transaction_id' and segment_type = 'VARCHAR'"
        ).fetchall()
    finally:
        con.close()
    assert methods == [("ZSTD",)]


# -- which JSON Lines reader ------------------------------------------------------------------


@both_jsonl_readers
@pytest.mark.parametrize(
    ("tail", "reader", "tail_reason"),
    [
        pytest.param("", "jsonl-columnar", None, id="clean"),
        pytest.param("\n", "jsonl-lines", None, id="blank-line"),
        pytest.param("{not json\n", "jsonl-lines", "invalid_json", id="malformed"),
        pytest.param("null\n", "jsonl-lines", "not_an_object", id="null"),
        pytest.param('{"unrelated": 1}\n', "jsonl-lines", "missing_transaction_id",
                     id="no-known-field"),
        pytest.param("[1, 2]\n", "jsonl-lines", "not_an_object", id="array"),
        pytest.param('{"transaction_id": "a", "transaction_id": "b"}\n', "jsonl-lines",
                     "missing_customer", id="repeated-key"),
        pytest.param("\r", "jsonl-lines", None, id="lone-cr"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("in_sample", [True, False], ids=["early", "late"])
def test_jsonl_reader_falls_back_to_lines_when_not_exact(
    tmp_path, wh, monkeypatch, jsonl_reader, tail, reader, tail_reason, in_sample
):
    """DuckDB's JSON reader takes a file only when every line gives exactly the row the line
    reader would; otherwise the file is read line by line, with the same result. A bad line
    among the first lines is seen before the read ("early"); a later one fails the read or
    its line count ("late"), and the rows of the batch's earlier files stay as they were."""
    from meterworks.ingest import core

    if not in_sample:
        monkeypatch.setattr(core, "KEY_SET_SAMPLE", 1)
    first = write_jsonl(tmp_path / "0.jsonl", [ev("t0"), {**ev("t00"), "customer_id": ""}])
    rows = [ev("t1"), ev("t2", event="api_request"), {**ev("t3"), "properties": {}}]
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\n" + tail + json.dumps(rows[2]))
    result = ingest(wh, [first, path])
    columnar = jsonl_reader == "jsonl-columnar"
    assert result.readers == ["jsonl-columnar" if columnar else "jsonl-lines",
                              reader if columnar else "jsonl-lines"]  # fmt: skip
    assert result.accepted == 3  # t00 has no customer, t3 lacks its tokens
    assert query(wh, "select transaction_id, source_file, source_line from raw.events "
                     "order by 1") == [
        ("t0", str(first), 1), ("t1", str(path), 1), ("t2", str(path), 2)
    ]  # fmt: skip
    quarantined = quarantine(wh)
    assert quarantined[0] == (2, "missing_customer",
                              "no customer (customer_id) in a canonical event",
                              json.dumps({**ev("t00"), "customer_id": ""}))  # fmt: skip
    assert quarantined[-1] == (
        4 if tail else 3,  # a lone CR ends a line too
        "missing_property",
        "property 'tokens' is required by meter 'tokens' (sum)",
        json.dumps(rows[2]),
    )
    assert [(line, reason, text) for line, reason, _, text in quarantined[1:-1]] == (
        [(3, tail_reason, tail.strip())] if tail_reason else []
    )


def test_jsonl_readers_store_the_same_demo_batch(tmp_path, monkeypatch):
    """The demo's JSON Lines files, every shape with its duplicates, conflicts, corrections
    and quarantinable rows, but without the lines that are not JSON objects (with which the
    JSON reader hands the file to the line reader): both readers store the same events,
    quarantine rows and counts."""
    from meterworks.catalog import load_catalog
    from meterworks.demo import generate_demo
    from meterworks.ingest import core

    generate_demo(tmp_path / "demo", seed=11, customers=12, days=28)
    catalog = load_catalog(tmp_path / "demo" / "catalog.yml")
    files = []
    for path in sorted((tmp_path / "demo" / "events").glob("*.jsonl*")):
        text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else None
        kept = []
        for line in (text or path.read_text()).splitlines():
            try:
                if isinstance(json.loads(line), dict) and line.strip():
                    kept.append(line)
            except ValueError:
                pass
        files.append(write_jsonl(tmp_path / path.name.removesuffix(".gz"), kept))
    assert len(files) >= 4
    stored, now = {}, datetime.now(UTC)
    for columnar in (True, False):
        monkeypatch.setattr(core, "COLUMNAR_JSONL", columnar)
        target = tmp_path / f"{columnar}.duckdb"
        results = [ingest_files(target, [f], catalog, now=now) for f in files]
        assert {r for result in results for r in result.readers} == (
            {"jsonl-columnar"} if columnar else {"jsonl-lines"}
        )
        stored[columnar] = (
            [summary(result) for result in results],
            query(target, "select * exclude (ingested_at, source_file) from raw.events "
                          "order by event_seq"),
            query(target, "select * exclude (quarantined_at, source_file) from raw.quarantine "
                          "order by all"),
        )  # fmt: skip
    counts, events, quarantined = stored[True]
    assert len(events) == sum(c["accepted"] for c in counts) > 1000
    assert len(quarantined) == sum(c["quarantined"] for c in counts)
    assert {reason for c in counts for reason in c["quarantined_by_reason"]} >= {
        "conflict",
        "missing_customer",
    }
    assert sum(c["corrections"] for c in counts) > 0
    assert stored[True] == stored[False]


@pytest.mark.parametrize("chunk", [1, 2, 3, 8 << 20])
def test_line_count_of_the_file_scan(tmp_path, monkeypatch, chunk):
    """The line count the JSON reader's row count is checked against: LF and CRLF lines, a
    last line without its newline; none when a CR ends a line alone (the line reader splits
    there, the JSON reader does not), wherever the read chunks happen to split the file."""
    from meterworks.ingest import files

    monkeypatch.setattr(files, "_HASH_CHUNK", chunk)
    cases = {
        b"": 0, b"a": 1, b"a\n": 1, b"a\nb": 2, b"\n\n": 2, b"a\r\nb\r\n": 2,
        b"abcd\r\nefg\r\nh": 3, b"\r\n\r\n": 2,
        b"a\rb\n": None, b"a\r": None, b"abc\rde\n": None, b"ab\r\rc\n": None,
    }  # fmt: skip
    counted = {}
    for data in cases:
        path = tmp_path / "x.jsonl"
        path.write_bytes(data)
        [file] = files.resolve_inputs([path])
        scan = file.scan()
        assert scan.sha256 == hashlib.sha256(data).hexdigest()
        counted[data] = scan.lines
    assert counted == cases
