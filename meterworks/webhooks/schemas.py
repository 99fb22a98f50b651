"""Versioned JSON schemas of the webhook payloads, kept in the repo under ``schemas/webhooks/``.

The Python dicts next to the code that builds the payloads are the source of truth: every
module-level ``*_PAYLOAD_SCHEMA`` dict in ``SCHEMA_MODULES`` whose ``title`` is the event type
(and whose ``properties.schema_version.const`` is its version, 1 when absent) is a schema.
``python -m meterworks.webhooks.schemas`` writes them to
``schemas/webhooks/<event_type>.v<version>.json``; a test holds the files equal to the dicts.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from meterworks.config import REPO_ROOT

SCHEMA_DIR = REPO_ROOT / "schemas" / "webhooks"
#: where payload schemas live (a module that does not exist yet is skipped)
SCHEMA_MODULES = ("alerts.thresholds", "alerts.anomaly.alerting", "alerts.anomaly")
#: every event type Meterworks sends
EVENT_TYPES = ("usage.threshold_crossed", "usage.anomaly_detected", "invoice.projection_exceeded")
EVENT_DESCRIPTIONS = {
    "usage.threshold_crossed": "A customer's usage of a meter reached a quota threshold "
    "(a percent of the included quantity) in the current billing period.",
    "usage.anomaly_detected": "A customer's usage of a meter departed from its own history "
    "(weekday-aware), with an explanation.",
    "invoice.projection_exceeded": "The projected invoice of a customer's open billing period "
    "reached a spend threshold.",
}


def _import_optional(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            return None  # the module itself is absent; a broken import inside it still raises
        raise


def payload_schemas() -> dict[tuple[str, int], dict[str, Any]]:
    """Every payload schema importable now, keyed by (event type, version)."""
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for module_name in SCHEMA_MODULES:
        module = _import_optional(module_name)
        if module is None:
            continue
        for attr, value in sorted(vars(module).items()):
            if not (attr.endswith("PAYLOAD_SCHEMA") and isinstance(value, dict)):
                continue
            event_type = value.get("title")
            if event_type not in EVENT_TYPES:
                continue
            version = schema_version(value)
            key = (event_type, version)
            if key in found and found[key] != value:
                raise ValueError(f"two different schemas for {event_type} v{version}")
            found[key] = value
    return dict(sorted(found.items()))


def schema_version(schema: dict[str, Any]) -> int:
    const = schema.get("properties", {}).get("schema_version", {}).get("const", 1)
    return int(const)


def schema_path(event_type: str, version: int, directory: Path = SCHEMA_DIR) -> Path:
    return directory / f"{event_type}.v{version}.json"


def render(schema: dict[str, Any]) -> str:
    """The file content of a schema (stable: two-space indent, keys as written, final newline)."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schema_files(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every importable schema; return the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for (event_type, version), schema in payload_schemas().items():
        path = schema_path(event_type, version, directory)
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


def svix_event_types() -> list[dict[str, Any]]:
    """What to register in Svix: one event type per name, its schemas keyed by version."""
    by_type: dict[str, dict[str, Any]] = {}
    for (event_type, version), schema in payload_schemas().items():
        by_type.setdefault(event_type, {})[str(version)] = schema
    return [
        {
            "name": event_type,
            "description": EVENT_DESCRIPTIONS.get(event_type, event_type),
            "schemas": schemas,
        }
        for event_type, schemas in by_type.items()
    ]


if __name__ == "__main__":  # pragma: no cover - the generator
    for path in write_schema_files():
        print(path.relative_to(REPO_ROOT))
    sys.exit(0)
