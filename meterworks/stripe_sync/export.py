"""Reading Stripe list exports from a directory (no API key needed; what the demo uses).

Files, all optional, one Stripe object per line (``.jsonl``) or a ``.json`` file holding a JSON
array or a Stripe list object (``{"object": "list", "data": [...]}``)::

    customers  products  prices  subscriptions  invoices  invoice_lines  credit_notes
    credit_note_lines  billing_meters  billing_meter_event_summaries

Invoices, credit notes and subscriptions may embed their ``lines``/``items`` (stored as their
own rows too); ``invoice_lines`` rows name their invoice in ``invoice``, ``credit_note_lines``
rows in ``credit_note``, summaries their meter in ``meter``. Other files are ignored with a note.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from meterworks.stripe_sync.errors import StripeSyncError
from meterworks.stripe_sync.schema import CHILD_TYPE
from meterworks.stripe_sync.sync import SyncContext

#: File stem -> Stripe ``object`` value, in reading order (parents before separate children).
EXPORT_FILES: dict[str, str] = {
    "customers": "customer",
    "products": "product",
    "prices": "price",
    "subscriptions": "subscription",
    "invoices": "invoice",
    "invoice_lines": "line_item",
    "credit_notes": "credit_note",
    "credit_note_lines": "credit_note_line_item",
    "billing_meters": "billing.meter",
    "billing_meter_event_summaries": "billing.meter_event_summary",
}
_SUFFIXES = (".json", ".jsonl")
_EMBEDDED_KEY = {"invoice": "lines", "credit_note": "lines", "subscription": "items"}
#: Separate child files: object type -> (parent object type, field naming the parent).
_PARENT_FIELD = {
    "line_item": ("invoice", "invoice"),
    "credit_note_line_item": ("credit_note", "credit_note"),
    "subscription_item": ("subscription", "subscription"),
    "billing.meter_event_summary": ("billing.meter", "meter"),
}


def _ref(value: Any) -> str | None:
    """An id, or the id of an expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


class StripeExportSource:
    """Stripe objects exported to files in ``directory`` (always a full upsert, mode 'export')."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.name = f"export:{self.directory.resolve()}"

    def __repr__(self) -> str:
        return f"StripeExportSource({str(self.directory)!r})"

    def _read(self, path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
        """(position for messages, object) for every object in one file."""
        if path.suffix == ".jsonl":
            with path.open(encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    where = f"{path.name} line {lineno}"
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise StripeSyncError(f"{where}: malformed JSON ({e.msg})") from None
                    yield where, obj
            return
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise StripeSyncError(
                f"{path.name} line {e.lineno}: malformed JSON ({e.msg})"
            ) from None
        if (
            isinstance(doc, dict)
            and doc.get("object") == "list"
            and isinstance(doc.get("data"), list)
        ):
            if doc.get("has_more"):
                self._notes.append(
                    f"{path.name}: one page of a list (has_more): later pages absent"
                )
            items = doc["data"]
        elif isinstance(doc, list):
            items = doc
        else:
            raise StripeSyncError(f"{path.name}: expected a JSON array or a Stripe list object")
        for index, obj in enumerate(items):
            yield f"{path.name} item {index}", obj

    def collect(self, ctx: SyncContext, *, full: bool) -> None:
        if not self.directory.is_dir():
            raise StripeSyncError(f"Stripe export directory not found: {self.directory}")
        self._notes = ctx.notes
        known = {f"{stem}{suffix}" for stem in EXPORT_FILES for suffix in _SUFFIXES}
        for path in sorted(self.directory.iterdir()):
            if path.is_file() and not path.name.startswith(".") and path.name not in known:
                ctx.note(f"ignored unknown file {path.name}")
        parent_seq: dict[tuple[str, str], int] = {}
        orphans = 0
        files = 0
        for stem, object_type in EXPORT_FILES.items():
            for suffix in _SUFFIXES:
                path = self.directory / f"{stem}{suffix}"
                if not path.is_file():
                    continue
                files += 1
                version = f"export:{path.name}"
                for where, obj in self._read(path):
                    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
                        raise StripeSyncError(f"{where}: expected a Stripe object with an id")
                    kind = obj.get("object", object_type)
                    if kind != object_type:
                        raise StripeSyncError(
                            f"{where}: expected object {object_type!r}, found {kind!r}"
                        )
                    if object_type in _PARENT_FIELD:
                        parent_type, field = _PARENT_FIELD[object_type]
                        parent = _ref(obj.get(field))
                        seq = parent_seq.get((parent_type, parent)) if parent else None
                        if parent is None:
                            orphans += 1
                        ctx.stager.add(
                            obj,
                            version_seen=version,
                            object_type=object_type,
                            parent_id=parent,
                            parent_seq=seq,
                        )
                        continue
                    parent_seq[(object_type, obj["id"])] = self._stage_parent(
                        ctx, obj, object_type, version
                    )
        if not files:
            ctx.note(f"no Stripe export files in {self.directory}")
        if orphans:
            ctx.note(f"{orphans} child rows without a parent reference")
        ctx.set_state("export", last_full_sync_at=ctx.now_naive)
        ctx.mode = "export"

    @staticmethod
    def _stage_parent(ctx: SyncContext, obj: dict[str, Any], object_type: str, version: str) -> int:
        child_type = CHILD_TYPE.get(object_type)
        if child_type and obj.get("deleted") is True:  # a deleted parent has no children left
            return ctx.stager.add(obj, version_seen=version, object_type=object_type, complete=True)
        embedded = obj.get(_EMBEDDED_KEY.get(object_type, "")) if child_type else None
        if not isinstance(embedded, dict):
            return ctx.stager.add(obj, version_seen=version, object_type=object_type)
        complete = embedded.get("has_more") is False
        seq = ctx.stager.add(obj, version_seen=version, object_type=object_type, complete=complete)
        for child in embedded.get("data") or []:
            if isinstance(child, dict):
                ctx.stager.add(
                    child,
                    version_seen=version,
                    object_type=child.get("object") or child_type,
                    parent_id=obj["id"],
                    parent_seq=seq,
                )
        return seq
