"""The catalog is the one file users edit: every mistake must name the file, entry and problem."""

from pathlib import Path

import pytest

from meterworks.catalog import CatalogError, load_catalog, parse_catalog

METERS = [
    {"code": "api_calls", "event": "api_request", "aggregation": "count"},
    {"code": "tokens", "event": "completion", "aggregation": "sum", "property": "tokens",
     "group_by": ["model"], "filters": {"region": ["eu", "us"]}},
]  # fmt: skip


def test_valid_catalog_round_trips_to_warehouse_rows() -> None:
    catalog = parse_catalog(
        {"meters": METERS, "customers": [{"id": "acme", "timezone": "America/Los_Angeles"}]}
    )
    assert catalog.backdating_days == 35
    assert catalog.event_names == {"api_request", "completion"}
    assert [m.code for m in catalog.meters_for_event("completion")] == ["tokens"]
    rows = catalog.meter_rows()
    assert rows[1]["group_by"] == '["model"]'
    assert rows[1]["filters"] == '{"region": ["eu", "us"]}'
    assert catalog.customer_rows() == [
        {"customer_id": "acme", "name": None, "timezone": "America/Los_Angeles", "plan_code": None}
    ]


def test_scalar_filter_value_becomes_a_list() -> None:
    meter = {"code": "eu_calls", "event": "api_request", "aggregation": "count",
             "filters": {"region": "eu"}}  # fmt: skip
    assert parse_catalog({"meters": [meter]}).meters[0].filters == {"region": ["eu"]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"meters": [{"code": "t", "event": "e", "aggregation": "sum"}]},
            "cat.yml: meters[0] (t): a 'sum' meter needs a property",
        ),
        (
            {"meters": [{"code": "c", "event": "e", "aggregation": "count", "property": "x"}]},
            "cat.yml: meters[0] (c): a 'count' meter counts events and takes no property",
        ),
        (
            {"meters": [{"code": "a", "event": "e", "aggregation": "avg"}]},
            "cat.yml: meters[0] (a).aggregation: Input should be",
        ),
        ({"meters": [METERS[0], METERS[0]]}, "meters: 'api_calls' is defined twice"),
        (
            {"meters": METERS, "customers": [{"id": "x", "timezone": "Mars/Olympus"}]},
            "cat.yml: customers[0] (x).timezone: unknown time zone 'Mars/Olympus'",
        ),
        (
            {"meters": METERS, "customers": [{"id": "x", "plan": "gold"}]},
            "customers[0] (x): unknown plan 'gold'",
        ),
        (
            {"meters": METERS, "plans": [{"code": "p", "charges": [{"meter": "nope"}]}]},
            "plans[0] (p): charge refers to unknown meter 'nope'",
        ),
        ({"meters": METERS, "colour": "blue"}, "cat.yml: colour: Extra inputs are not permitted"),
        ({"meters": []}, "cat.yml: meters: List should have at least 1 item"),
        (["not", "a", "mapping"], "cat.yml: the catalog must be a YAML mapping"),
    ],
)
def test_invalid_catalog_names_file_entry_and_problem(data, message: str) -> None:
    with pytest.raises(CatalogError) as excinfo:
        parse_catalog(data, source="cat.yml")
    assert message in str(excinfo.value)


def test_load_catalog_file_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="catalog file not found"):
        load_catalog(tmp_path / "missing.yml")
    broken = tmp_path / "broken.yml"
    broken.write_text("meters: [unclosed\n")
    with pytest.raises(CatalogError, match=r"broken.yml: not valid YAML"):
        load_catalog(broken)


def test_example_catalog_in_repo_loads() -> None:
    example = Path(__file__).parent.parent / "data" / "catalog.example.yml"
    catalog = load_catalog(example)
    assert catalog.meters
