"""The ground truth of the demo: customers and the usage they really produced.

Everything here is vectorised with numpy: usage is drawn as Poisson counts on a
customer x local-day grid (size x growth x weekday x noise x anomalies), expanded into one row
per event, and given a timestamp from a diurnal profile in the customer's own time zone.

An event is five integers (``cust``, ``etype``, ``ts`` epoch seconds UTC, ``a``, ``b``); what
``a`` and ``b`` mean depends on the event type (see ``EVENT_TYPES``). The delivery module turns
these rows into files; the expectations are computed from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

DAY = 86_400

# etype -> (event name, meaning of a, meaning of b)
EVENT_TYPES = ("api_request", "completion", "session", "storage_snapshot", "seat_count")
API, COMPLETION, SESSION, STORAGE, SEATS = range(5)

ENDPOINTS = ("/v1/search", "/v1/chat", "/v1/embeddings", "/v1/files", "/v1/users")
ENDPOINT_WEIGHTS = (0.38, 0.27, 0.2, 0.1, 0.05)
STATUSES = (200, 429, 500)
STATUS_WEIGHTS = (0.955, 0.03, 0.015)
MODELS = ("orion-mini", "orion-standard", "orion-large")
PREMIUM_MODEL = 2  # index of the model the premium_tokens meter filters on

TIMEZONES = (
    "America/Los_Angeles",
    "America/New_York",
    "Europe/Berlin",
    "Europe/London",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "UTC",
    "Australia/Sydney",
)
TIMEZONE_WEIGHTS = (0.22, 0.24, 0.14, 0.08, 0.09, 0.07, 0.07, 0.09)
COMPANY_SUFFIX = {
    "Europe/Berlin": " GmbH",
    "Europe/London": " Ltd",
    "Asia/Kolkata": " Pvt Ltd",
    "Asia/Tokyo": " KK",
    "Australia/Sydney": " Pty Ltd",
}

SHAPES = ("canonical", "lago", "orb", "metronome", "cloudevents")
SHAPE_WEIGHTS = (0.55, 0.12, 0.12, 0.10, 0.11)

#: mean api_request events per customer-day (before weekday/growth effects); with the other
#: event types this gives ~1 million rows for 200 customers x 120 days.
API_EVENTS_PER_CUSTOMER_DAY = 26.0

NAME_FIRST = (
    "Acorn", "Atlas", "Beacon", "Birch", "Bright", "Cedar", "Cobalt", "Copper", "Delta",
    "Drift", "Echo", "Ember", "Falcon", "Fern", "Glacier", "Granite", "Harbor", "Helix",
    "Indigo", "Iron", "Jade", "Juniper", "Kestrel", "Kite", "Lark", "Lumen", "Maple",
    "Meridian", "Nimbus", "Nova", "Onyx", "Orbit", "Pine", "Prism", "Quartz", "Quill",
    "Raven", "River", "Sable", "Summit", "Terra", "Tidal", "Vela", "Vertex", "Willow",
    "Wren", "Yarrow", "Zephyr",
)  # fmt: skip
NAME_SECOND = (
    "Labs", "Analytics", "Systems", "AI", "Health", "Logistics", "Robotics", "Pay", "Cloud",
    "Data", "Software", "Security", "Learning", "Bio", "Networks", "Media", "Commerce",
    "Energy", "Works", "Dynamics",
)  # fmt: skip


@dataclass
class Customers:
    """One entry per customer, index = position (``cus_demo_0001`` is index 0)."""

    ids: list[str]
    names: list[str]
    tz: np.ndarray  # index into TIMEZONES
    size: np.ndarray  # relative size (mean 1)
    shape: np.ndarray  # index into SHAPES
    b2c: np.ndarray  # bool: consumer-like (flat week, evening peak)
    start_day: np.ndarray  # first local day with usage
    stop_day: np.ndarray  # first local day without usage (== days when still active)
    completion_ratio: np.ndarray
    users: np.ndarray  # size of the user pool (active_users)

    @property
    def n(self) -> int:
        return len(self.ids)


@dataclass
class Anomaly:
    cust: int
    meter_code: str
    kind: str
    start_ts: int
    end_ts: int
    factor: float


@dataclass
class Truth:
    """The simulated world: customers, their events (sorted by ts) and labelled anomalies."""

    start: date
    end: date
    t0: int  # epoch seconds of start 00:00 UTC
    t1: int  # epoch seconds of end + 1 day 00:00 UTC
    customers: Customers
    events: dict[str, np.ndarray]  # cust, etype, ts, a, b
    anomalies: list[Anomaly] = field(default_factory=list)


def epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def _company_names(rng: np.random.Generator, tz: np.ndarray) -> list[str]:
    combos = [f"{a} {b}" for a in NAME_FIRST for b in NAME_SECOND]
    order = rng.permutation(len(combos))
    names = []
    for i, tz_index in enumerate(tz):
        base = combos[order[i % len(combos)]]
        if i >= len(combos):
            base += f" {i // len(combos) + 1}"
        names.append(base + COMPANY_SUFFIX.get(TIMEZONES[tz_index], " Inc"))
    return names


def _customers(rng: np.random.Generator, n: int, days: int) -> Customers:
    tz = rng.choice(len(TIMEZONES), size=n, p=TIMEZONE_WEIGHTS)
    # heavy tail: lognormal body, and a few whales boosted on top of it
    size = rng.lognormal(0.0, 1.35, size=n)
    whales = max(2, round(n * 0.02))
    top = np.argsort(-size, kind="stable")[:whales]
    size[top] *= 3.0
    size /= size.mean()

    # each customer integrates through exactly one shape; every shape gets >= 1 customer
    counts = [max(1, round(n * w)) for w in SHAPE_WEIGHTS[1:]]
    shape = np.array(
        [0] * (n - sum(counts)) + [s + 1 for s, c in enumerate(counts) for _ in range(c)]
    )
    shape = shape[rng.permutation(n)]
    shape[np.argmax(size)] = 0  # the biggest whale talks to the canonical API

    b2c = rng.random(n) < 0.18
    start_day = np.zeros(n, dtype=np.int64)
    late_start = rng.random(n) < 0.22
    start_day[late_start] = rng.integers(3, max(4, int(days * 0.85)), size=late_start.sum())
    stop_day = np.full(n, days, dtype=np.int64)
    churn = (rng.random(n) < 0.09) & (size < np.quantile(size, 0.9))
    for i in np.flatnonzero(churn):
        lo, hi = start_day[i] + 14, days - 3
        if lo < hi:
            stop_day[i] = rng.integers(lo, hi)
    uses_ai = rng.random(n) < 0.8
    completion_ratio = np.where(uses_ai, rng.uniform(0.08, 0.6, size=n), 0.0)
    users = np.maximum(2, np.round(4 + 10 * size**0.6 * rng.uniform(0.5, 1.5, size=n))).astype(
        np.int64
    )
    ids = [f"cus_demo_{i + 1:04d}" for i in range(n)]
    return Customers(
        ids=ids,
        names=_company_names(rng, tz),
        tz=tz,
        size=size,
        shape=shape,
        b2c=b2c,
        start_day=start_day,
        stop_day=stop_day,
        completion_ratio=completion_ratio,
        users=users,
    )


def _utc_offsets(start: date, days: int) -> np.ndarray:
    """[tz, day] -> UTC offset in seconds at local noon of that date."""
    out = np.zeros((len(TIMEZONES), days), dtype=np.int64)
    for t, name in enumerate(TIMEZONES):
        zone = ZoneInfo(name)
        for d in range(days):
            local = datetime.combine(start + timedelta(days=d), datetime.min.time()).replace(
                hour=12, tzinfo=zone
            )
            out[t, d] = int(local.utcoffset().total_seconds())
    return out


def _diurnal(b2c: bool) -> np.ndarray:
    hours = np.arange(24)
    if b2c:
        w = 0.35 + np.exp(-0.5 * ((hours - 20.0) / 3.5) ** 2)
    else:
        w = 0.06 + np.exp(-0.5 * ((hours - 13.5) / 3.0) ** 2)
    return w / w.sum()


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poisson counts on the [cust, day] grid -> (cust, day) per event."""
    n, days = counts.shape
    cell = np.repeat(np.arange(n * days), counts.ravel())
    return cell // days, cell % days


def _pick(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    return np.searchsorted(np.cumsum(weights), rng.random(size) * np.sum(weights), side="right")


def simulate(seed: int, n_customers: int, days: int, end: date) -> Truth:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x6D657465]))
    start = end - timedelta(days=days - 1)
    t0, t1 = epoch(start), epoch(end) + DAY
    cust = _customers(rng, n_customers, days)
    n = cust.n
    d = np.arange(days)

    weekday = np.array([(start + timedelta(days=int(x))).weekday() for x in d])
    weekend = weekday >= 5
    weekend_factor = np.where(cust.b2c, rng.uniform(0.85, 1.05, n), rng.uniform(0.22, 0.42, n))
    week = np.where(weekend[None, :], weekend_factor[:, None], 1.0)
    week = week * np.where(weekday[None, :] == 0, 1.05, 1.0)  # Mondays a little busier
    growth = rng.normal(0.003, 0.004, n)
    trend = np.exp(growth[:, None] * (d[None, :] - days / 2))
    active = (d[None, :] >= cust.start_day[:, None]) & (d[None, :] < cust.stop_day[:, None])
    # a newly signed customer ramps up over its first two weeks
    ramp = np.clip((d[None, :] - cust.start_day[:, None] + 1) / 14.0, 0.15, 1.0)
    ramp = np.where(cust.start_day[:, None] > 0, ramp, 1.0)
    noise = rng.gamma(16.0, 1 / 16.0, size=(n, days))

    lam_api = cust.size[:, None] * trend * week * ramp * noise * active
    lam_api *= API_EVENTS_PER_CUSTOMER_DAY * n * days / max(lam_api.sum(), 1e-9)
    lam_completion = lam_api * cust.completion_ratio[:, None]
    lam_session = 0.45 * cust.users[:, None] * np.sqrt(trend) * week * ramp * active

    offsets = _utc_offsets(start, days)[cust.tz]  # [cust, day]
    day_start = t0 + d[None, :] * DAY - offsets  # local midnight, epoch seconds UTC
    diurnal = np.stack([_diurnal(False), _diurnal(True)])

    anomalies, storms = _plan_anomalies(rng, cust, lam_api, days, day_start, diurnal, t1)
    for an in anomalies:
        i = an.cust
        lo = int(np.searchsorted(day_start[i], an.start_ts))
        hi = int(np.searchsorted(day_start[i], an.end_ts)) if an.end_ts < t1 else days
        if an.kind in ("spike", "level_shift", "drop_to_zero"):
            target = lam_completion if an.meter_code == "tokens" else lam_api
            target[i, lo:hi] *= an.factor
            if an.kind == "drop_to_zero":  # an outage takes every kind of traffic with it
                lam_completion[i, lo:hi] = 0.0

    parts: list[dict[str, np.ndarray]] = []

    def add(etype: int, c: np.ndarray, ts: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
        parts.append({"cust": c, "etype": np.full(len(c), etype), "ts": ts, "a": a, "b": b})

    def diurnal_ts(c: np.ndarray, day: np.ndarray) -> np.ndarray:
        u = rng.random(len(c))
        cw = np.cumsum(diurnal, axis=1)
        hour = np.where(
            cust.b2c[c], np.searchsorted(cw[1], u, side="right"), np.searchsorted(cw[0], u, "right")
        )
        hour = np.minimum(hour, 23)
        return day_start[c, day] + hour * 3600 + rng.integers(0, 3600, len(c))

    # api_request: a = endpoint, b = HTTP status
    c, day = _expand(rng.poisson(lam_api))
    add(API, c, diurnal_ts(c, day), _pick(rng, np.array(ENDPOINT_WEIGHTS), len(c)),
        np.array(STATUSES)[_pick(rng, np.array(STATUS_WEIGHTS), len(c))])  # fmt: skip
    for i, ts0, ts1, extra in storms:  # retry storm: a burst of the same calls
        ts = rng.integers(ts0, ts1, extra)
        add(API, np.full(extra, i), ts, np.zeros(extra, dtype=np.int64),
            np.where(rng.random(extra) < 0.7, 429, 200))  # fmt: skip

    # completion: a = model, b = tokens
    mix = rng.dirichlet([3.0, 2.0, 1.0], size=n)
    c, day = _expand(rng.poisson(lam_completion))
    u = rng.random(len(c))
    model = (u[:, None] > np.cumsum(mix, axis=1)[c]).sum(axis=1).clip(0, 2)
    tokens = np.round(rng.lognormal(6.4, 0.9, len(c)) * (1 + model)).astype(np.int64) + 1
    add(COMPLETION, c, diurnal_ts(c, day), model, tokens)

    # session: a = user index within the customer (zipf-ish popularity), b = 0
    c, day = _expand(rng.poisson(lam_session))
    user = np.floor(cust.users[c] * rng.random(len(c)) ** 1.8).astype(np.int64)
    add(SESSION, c, diurnal_ts(c, day), user, np.zeros(len(c), dtype=np.int64))

    # storage_snapshot once a day at ~03:00 local: b = gb in hundredths
    c, day = np.nonzero(active)
    base_gb = cust.size**0.8 * rng.uniform(5, 60, n)
    gb_growth = np.clip(rng.normal(0.006, 0.004, n), 0.0, None)
    rel = d[None, :] - cust.start_day[:, None]
    gb = base_gb[:, None] * np.exp(gb_growth[:, None] * rel) * rng.normal(1, 0.01, (n, days))
    cents = np.maximum(np.round(gb * 100), 1).astype(np.int64)
    ts = day_start[c, day] + 3 * 3600 + rng.integers(0, 1800, len(c))
    add(STORAGE, c, ts, np.zeros(len(c), dtype=np.int64), cents[c, day])

    # seat_count once a day at ~00:30 local: b = seats (slow random walk upwards)
    steps = rng.choice([-1, 0, 0, 0, 0, 0, 0, 0, 1, 1], size=(n, days)) * active
    seats = np.maximum(1, np.round(3 + 12 * cust.size**0.5)[:, None] + np.cumsum(steps, axis=1))
    ts = day_start[c, day] + 1800 + rng.integers(0, 1200, len(c))
    add(SEATS, c, ts, np.zeros(len(c), dtype=np.int64), seats[c, day].astype(np.int64))

    events = {k: np.concatenate([p[k] for p in parts]).astype(np.int64) for k in parts[0]}
    keep = (events["ts"] >= t0) & (events["ts"] < t1)
    order = np.lexsort((events["b"], events["a"], events["etype"], events["cust"], events["ts"]))
    order = order[keep[order]]
    events = {k: v[order] for k, v in events.items()}
    return Truth(start, end, t0, t1, cust, events, anomalies)


def _plan_anomalies(
    rng: np.random.Generator,
    cust: Customers,
    lam_api: np.ndarray,
    days: int,
    day_start: np.ndarray,
    diurnal: np.ndarray,
    t1: int,
) -> tuple[list[Anomaly], list[tuple[int, int, int, int]]]:
    """Labelled anomalies on mid-sized, steadily active customers (one per customer)."""
    mean_api = lam_api.sum(axis=1) / np.maximum(cust.stop_day - cust.start_day, 1)
    lo_q, hi_q = np.quantile(cust.size, [0.25, 0.97])
    eligible = np.flatnonzero(
        (cust.start_day == 0)
        & (cust.stop_day == days)
        & (cust.size >= lo_q)
        & (cust.size <= hi_q)
        & (mean_api >= 8)
    )
    eligible = list(rng.permutation(eligible))
    ai_users = [i for i in eligible if cust.completion_ratio[i] > 0]
    specs = [
        ("spike", "api_calls", 10.0, 1),
        ("retry_storm", "api_calls", 50.0, 0),
        ("spike", "tokens", 10.0, 1),
        ("drop_to_zero", "api_calls", 0.0, 3),
        ("level_shift", "api_calls", 3.0, -1),
        ("spike", "api_calls", 10.0, 1),
        ("drop_to_zero", "api_calls", 0.0, 2),
        ("level_shift", "api_calls", 0.35, -1),
    ]
    anomalies: list[Anomaly] = []
    storms: list[tuple[int, int, int, int]] = []
    used: set[int] = set()
    for kind, meter, factor, length in specs:
        pool = ai_users if meter == "tokens" else eligible
        pool = [i for i in pool if i not in used]
        if not pool:
            continue
        i = int(pool[0])
        used.add(i)
        if kind == "level_shift":
            first = int(rng.integers(int(days * 0.6), max(int(days * 0.6) + 1, days - 9)))
            anomalies.append(Anomaly(i, meter, kind, int(day_start[i, first]), t1, factor))
            continue
        first = int(rng.integers(14, days - 4))
        if kind == "retry_storm":
            hour = 10 if not cust.b2c[i] else 19
            ts0 = int(day_start[i, first] + hour * 3600)
            expected = lam_api[i, first] * diurnal[int(cust.b2c[i]), hour : hour + 2].sum()
            extra = int(rng.poisson((factor - 1) * max(expected, 20.0)))
            storms.append((i, ts0, ts0 + 7200, extra))
            anomalies.append(Anomaly(i, meter, kind, ts0, ts0 + 7200, factor))
            continue
        window = (int(day_start[i, first]), int(day_start[i, first + length]))
        anomalies.append(Anomaly(i, meter, kind, *window, factor))
        if kind == "drop_to_zero" and cust.completion_ratio[i] > 0:  # the outage hits tokens too
            anomalies.append(Anomaly(i, "tokens", kind, *window, factor))
    return anomalies, storms


def local_months(cust_index: np.ndarray, ts: np.ndarray, customers: Customers) -> np.ndarray:
    """The ``YYYY-MM-01`` local calendar month of each (customer, UTC epoch second)."""
    code = np.zeros(len(ts), dtype=np.int64)
    tz_of_event = customers.tz[cust_index]
    for t in np.unique(tz_of_event):
        mask = tz_of_event == t
        local = pd.DatetimeIndex(pd.to_datetime(ts[mask], unit="s", utc=True)).tz_convert(
            TIMEZONES[t]
        )
        code[mask] = local.year.to_numpy() * 100 + local.month.to_numpy()
    labels = {c: f"{c // 100:04d}-{c % 100:02d}-01" for c in np.unique(code).tolist()}
    return np.array([labels[c] for c in code.tolist()], dtype=object)
