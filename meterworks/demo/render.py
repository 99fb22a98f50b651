"""Writes the planned rows as files in each source's own shape and format.

Byte-for-byte deterministic: gzip members carry no name or mtime, CSV and Parquet are written
by pyarrow from string columns, JSON is formatted by hand (compact, fixed key order).
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from meterworks.demo.deliver import BAD, CORRECTION, RECORD, Delivery, file_format
from meterworks.demo.simulate import (
    API,
    COMPLETION,
    ENDPOINTS,
    EVENT_TYPES,
    MODELS,
    SEATS,
    SESSION,
    STORAGE,
)

CE_SOURCE = "//gateway.demo.meterworks"
TABULAR_COLUMNS = {
    "orb": ("idempotency_key", "external_customer_id", "event_name", "timestamp", "properties"),
    "metronome": ("transaction_id", "customer_id", "event_type", "timestamp", "properties"),
}
LAGO_WRAPPED_ROWS = 25  # the first rows of lago-export-2 come from an API request log


def properties_json(versions: dict[str, np.ndarray]) -> list[str]:
    """The properties object of every version, as compact JSON text."""
    etype, a, b, cust = (versions[k].tolist() for k in ("etype", "a", "b", "cust"))
    out: list[str] = []
    for t, x, y, c in zip(etype, a, b, cust, strict=True):
        if t == API:
            out.append(f'{{"endpoint":"{ENDPOINTS[x]}","status":{y}}}')
        elif t == COMPLETION:
            out.append(f'{{"model":"{MODELS[x]}","tokens":{y}}}')
        elif t == SESSION:
            out.append(f'{{"user_id":"usr_{c + 1:04d}_{x:04d}"}}')
        elif t == STORAGE:
            out.append(f'{{"gb":{y / 100!r}}}')
        elif t == SEATS:
            out.append(f'{{"seats":{y}}}')
        else:  # pragma: no cover
            raise ValueError(t)
    return out


def rfc3339(ts: np.ndarray) -> np.ndarray:
    return np.char.add(np.datetime_as_string(ts.astype("datetime64[s]"), unit="s"), "Z")


class Renderer:
    def __init__(self, d: Delivery) -> None:
        self.d = d
        v = d.versions
        self.props = properties_json(v)
        self.ts = v["ts"]
        self.ts_text = rfc3339(v["ts"]).tolist()
        ids = d.truth.customers.ids
        self.cust = [ids[c] for c in v["cust"].tolist()]
        self.event = [EVENT_TYPES[t] for t in v["etype"].tolist()]

    def _content(self, version: int) -> dict[str, Any]:
        return {
            "customer_id": self.cust[version],
            "event": self.event[version],
            "timestamp": self.ts_text[version],
            "properties": json.loads(self.props[version]),
        }

    def correction_line(self, extra_index: int) -> str:
        x = self.d.extras[extra_index]
        target_tid = self.d.tids[x.target]
        row: dict[str, Any] = {"transaction_id": x.tid, "action": x.action, "corrects": target_tid}
        if x.action == "amend":
            row.update(self._content(x.version))
        elif extra_index // 2 % 2 == 0:  # a void may say what it voids; the store copies it
            content = self._content(x.target)
            del content["properties"]
            row.update(content)
        return json.dumps(row, separators=(",", ":"))

    def write(self, out_dir: Path, name: str, rows: pd.DataFrame) -> int:
        """Write one file from its rows (in order); returns the number of rows written."""
        shape = self.d.files[name]
        fmt = file_format(name)
        kind = rows["kind"].to_numpy()
        version = rows["version"].to_numpy()
        event = rows["event"].to_numpy()
        extra = rows["extra"].to_numpy()
        tids = self.d.tids
        path = out_dir / name
        if fmt.startswith("jsonl"):
            epoch_ms = name in self.d.epoch_ms_files
            lines: list[str] = []
            for i, (k, v, e, x) in enumerate(
                zip(kind.tolist(), version.tolist(), event.tolist(), extra.tolist(), strict=True)
            ):
                if k == RECORD:
                    ts = str(self.ts[v] * 1000) if epoch_ms else f'"{self.ts_text[v]}"'
                    line = self._jsonl(shape, tids[e], v, ts)
                    if shape == "lago" and name == "lago-export-2.jsonl" and i < LAGO_WRAPPED_ROWS:
                        line = f'{{"event":{line}}}'
                    lines.append(line)
                elif k == CORRECTION:
                    lines.append(self.correction_line(x))
                else:
                    lines.append(self.d.extras[x].payload)
            data = ("\n".join(lines) + "\n").encode("utf-8")
            if fmt.endswith(".gz"):
                data = gzip.compress(data, compresslevel=6, mtime=0)
            path.write_bytes(data)
            return len(lines)

        columns = TABULAR_COLUMNS[shape]
        table: dict[str, list[Any]] = {c: [] for c in columns}
        for k, v, e, x in zip(kind.tolist(), version.tolist(), event.tolist(), extra.tolist(), strict=True):  # fmt: skip
            if k == RECORD:
                values = (tids[e], self.cust[v], self.event[v], self.ts_text[v], self.props[v])
                for c, value in zip(columns, values, strict=True):
                    table[c].append(value)
            elif k == BAD:
                payload = self.d.extras[x].payload
                for c in columns:
                    table[c].append(payload[c])
            else:  # pragma: no cover - corrections only go to canonical JSONL
                raise ValueError(f"correction planned in {name}")
        arrow = pa.table({c: pa.array(table[c], type=pa.string()) for c in columns})
        if fmt == "parquet":
            pq.write_table(arrow, path, compression="zstd", row_group_size=256 * 1024)
        else:
            buffer = io.BytesIO()
            pacsv.write_csv(arrow, buffer)
            data = buffer.getvalue()
            path.write_bytes(gzip.compress(data, compresslevel=6, mtime=0) if fmt == "csv.gz" else data)  # fmt: skip
        return arrow.num_rows

    def _jsonl(self, shape: str, tid: str, v: int, ts: str) -> str:
        c, e, p = self.cust[v], self.event[v], self.props[v]
        if shape == "canonical":
            return f'{{"transaction_id":"{tid}","customer_id":"{c}","event":"{e}","timestamp":{ts},"properties":{p}}}'  # fmt: skip
        if shape == "lago":
            return f'{{"transaction_id":"{tid}","external_customer_id":"{c}","code":"{e}","timestamp":{self.ts[v]},"properties":{p}}}'  # fmt: skip
        if shape == "cloudevents":
            return f'{{"specversion":"1.0","id":"{tid}","source":"{CE_SOURCE}","type":"{e}","subject":"{c}","time":{ts},"datacontenttype":"application/json","data":{p}}}'  # fmt: skip
        raise ValueError(shape)  # pragma: no cover
