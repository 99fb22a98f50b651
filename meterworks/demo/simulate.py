"""The ground truth of the demo: customers and the usage they really produced.

Everything here is vectorised with numpy: usage is drawn as Poisson counts on a
customer x local-day grid (size x growth x weekday x noise x anomalies), expanded into one row
per event, and given a timestamp from a diurnal profile in the customer's own time zone.

LLM usage is that of paying customers: a customer that uses the completion API (a minority,
bigger ones likelier) sends at least ``COMPLETIONS_MIN_PER_DAY`` completions on a working day
(more in proportion to its API traffic), part of them from unattended jobs that also run at
weekends, each of a length typical of that customer; those that use the premium model send it a
good share, at least ``PREMIUM_MIN_PER_DAY`` completions a working day. Daily token sums are
therefore steady, as in real LLM traffic, not the sum of a few heavy-tailed completions.

The labelled anomalies (``_plan_anomalies``) sit on series an operator would want a page for:
steadily active customers whose usage of that meter is well above the anomaly model's volume
guard (``API_GUARD`` requests a day; the demo catalog's ``TOKENS_GUARD`` for the token meters).

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

#: share of customers that use the completion API (more likely the bigger the customer)
AI_ADOPTION = 0.3
#: least completions on a working day of a customer that uses the completion API at all
COMPLETIONS_MIN_PER_DAY = 40.0
#: share of the completion API's users that also use the premium model (bigger ones likelier),
#: with at least PREMIUM_MIN_PER_DAY of their completions a working day
PREMIUM_ADOPTION = 0.3
PREMIUM_MIN_PER_DAY = 30.0
#: spread of one customer's completion lengths (log scale) around its own typical length
TOKENS_SIGMA = 0.6

#: volume guards the labelled anomalies are planned against (units per day): the anomaly model's
#: default ``min_volume`` for requests, and the demo catalog's guard for the token meters
API_GUARD = 100.0
TOKENS_GUARD = 50_000.0
#: a labelled series is usually at least this many times above its meter's guard
GUARD_MARGIN = 3.0

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
    completion_ratio: np.ndarray  # completions per API request (0: no LLM usage)
    automation: np.ndarray  # share of the completions sent by unattended jobs (flat week)
    token_mu: np.ndarray  # log of the customer's typical completion length
    model_mix: np.ndarray  # [cust, model] share of the completions per model
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
    # bigger customers are likelier to use the completion API
    rank = np.argsort(np.argsort(size, kind="stable"), kind="stable") / max(n - 1, 1)
    uses_ai = rng.random(n) < AI_ADOPTION * (0.5 + rank)
    completion_ratio = np.where(uses_ai, rng.uniform(0.15, 0.6, size=n), 0.0)
    automation = rng.uniform(0.3, 0.7, size=n)
    token_mu = rng.normal(6.55, 0.35, size=n)
    # the premium model is for heavier LLM users, who send a good share of their traffic to it
    premium = uses_ai & (rng.random(n) < PREMIUM_ADOPTION * (0.5 + rank))
    premium_share = np.where(premium, rng.uniform(0.3, 0.6, size=n), 0.0)
    model_mix = np.column_stack(
        [rng.dirichlet([3.0, 2.0], size=n) * (1 - premium_share[:, None]), premium_share]
    )
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
        automation=automation,
        token_mu=token_mu,
        model_mix=model_mix,
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

    # expected requests of each customer-day (base_api) and the Poisson means (x day noise)
    base_api = cust.size[:, None] * trend * week * ramp * active
    scale = API_EVENTS_PER_CUSTOMER_DAY * n * days / max((base_api * noise).sum(), 1e-9)
    base_api *= scale
    lam_api = base_api * noise
    # completions: a working day's volume in proportion to the API traffic, with a floor; the
    # unattended share runs through the weekend; busy days are busy for both
    premium_share = cust.model_mix[:, PREMIUM_MODEL]
    per_workday = np.where(
        cust.completion_ratio > 0,
        np.maximum.reduce(
            [
                np.full(n, COMPLETIONS_MIN_PER_DAY),
                cust.completion_ratio * cust.size * scale,
                PREMIUM_MIN_PER_DAY / np.maximum(premium_share, 1e-9) * (premium_share > 0),
            ]
        ),
        0.0,
    )
    auto = cust.automation[:, None]
    base_completion = per_workday[:, None] * trend * (auto + (1 - auto) * week) * ramp * active
    lam_completion = base_completion * noise
    tokens_per_completion = np.exp(cust.token_mu + TOKENS_SIGMA**2 / 2) * (
        cust.model_mix @ (1.0 + np.arange(len(MODELS)))
    )

    offsets = _utc_offsets(start, days)[cust.tz]  # [cust, day]
    day_start = t0 + d[None, :] * DAY - offsets  # local midnight, epoch seconds UTC
    diurnal = np.stack([_diurnal(False), _diurnal(True)])

    plan = _plan_anomalies(
        rng,
        cust,
        {"api_calls": base_api, "tokens": base_completion * tokens_per_completion[:, None]},
        {"api_calls": lam_api, "tokens": lam_completion},
        weekday,
        day_start,
        diurnal,
        t1,
    )
    for i, meter, lo, hi, factor in plan.effects:
        (lam_api if meter == "api_calls" else lam_completion)[i, lo:hi] *= factor

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

    model_cdf = np.cumsum(cust.model_mix, axis=1)
    model_cdf[cust.model_mix[:, PREMIUM_MODEL] == 0, PREMIUM_MODEL - 1] = 1.0
    model_cdf[:, -1] = 1.0

    # api_request: a = endpoint, b = HTTP status
    c, day = _expand(rng.poisson(lam_api))
    add(API, c, diurnal_ts(c, day), _pick(rng, np.array(ENDPOINT_WEIGHTS), len(c)),
        np.array(STATUSES)[_pick(rng, np.array(STATUS_WEIGHTS), len(c))])  # fmt: skip

    for i, ts0, ts1, extra in plan.storms:  # retry storm: a burst of the same calls
        ts = rng.integers(ts0, ts1, extra)
        add(API, np.full(extra, i), ts, np.zeros(extra, dtype=np.int64),
            np.where(rng.random(extra) < 0.7, 429, 200))  # fmt: skip

    # completion: a = model, b = tokens (the customer's typical length x the model's verbosity)
    c, day = _expand(rng.poisson(lam_completion))
    model = (rng.random(len(c))[:, None] >= model_cdf[c]).sum(axis=1).clip(0, 2)
    length = rng.lognormal(0.0, TOKENS_SIGMA, len(c)) * np.exp(cust.token_mu[c])
    tokens = np.round(length * (1 + model)).astype(np.int64) + 1
    add(COMPLETION, c, diurnal_ts(c, day), model, tokens)

    # session: a = user index within the customer (zipf-ish popularity), b = 0
    lam_session = 0.45 * cust.users[:, None] * np.sqrt(trend) * week * ramp * active
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
    return Truth(start, end, t0, t1, cust, events, plan.labels)


@dataclass
class _Plan:
    labels: list[Anomaly] = field(default_factory=list)
    effects: list[tuple[int, str, int, int, float]] = field(default_factory=list)  # day windows
    storms: list[tuple[int, int, int, int]] = field(default_factory=list)  # cust, ts0, ts1, extra


#: the labelled incidents, most constrained first: (kind, meter, factor, days, when). ``now``
#: (retry storms): STORM_HOURS in a busy local hour at the end of the data, an hourly alert the
#: first `meterworks demo` run queues; ``last``: the last local day complete in every time zone,
#: a daily alert that run queues; ``recent``: within the summary's last four weeks; ``shift``:
#: 3-6 weeks ago; ``earlier``: before that. A level shift (``days`` 0) lasts to the end.
INCIDENTS = (
    ("retry_storm", "api_calls", 50.0, 0, "now"),  # a client retrying in a loop for 3 hours
    ("spike", "tokens", 15.0, 1, "last"),  # a runaway agent loop
    ("spike", "api_calls", 10.0, 1, "recent"),  # a backfill job
    ("drop_to_zero", "tokens", 0.0, 1, "recent"),  # the LLM integration broke for a day
    ("level_shift", "api_calls", 0.3, 0, "shift"),  # a big workload moved elsewhere
    ("drop_to_zero", "api_calls", 0.0, 2, "earlier"),  # a two-day outage: takes the tokens too
    ("spike", "tokens", 12.0, 1, "earlier"),  # a bulk summarisation job
    ("level_shift", "tokens", 4.0, 0, "earlier"),  # a feature launched on the LLM
    ("spike", "api_calls", 25.0, 1, "earlier"),  # a migration script
)
STORM_HOURS = 3
SEPARATION_DAYS = 28  # incidents on one series are at least this far apart


def _plan_anomalies(
    rng: np.random.Generator,
    cust: Customers,
    expected: dict[str, np.ndarray],
    lam: dict[str, np.ndarray],
    weekday: np.ndarray,
    day_start: np.ndarray,
    diurnal: np.ndarray,
    t1: int,
) -> _Plan:
    """Labelled anomalies on steadily active customers well above the meter's volume guard.

    ``expected[meter]`` is the expected volume of each customer-day (no day noise; tokens for
    the token meter) and ``lam[meter]`` the Poisson mean of its events. Candidates are customers
    active from the first to the last day whose median day is at least ``GUARD_MARGIN`` x the
    guard, in a seeded random order, those without an incident yet first; a daily incident
    starts on a day of the customer's expected volume >= 2 x the guard (a working day for a
    business), an hourly one in a busy local hour. Small demos without such customers fall back
    to the biggest steady ones. An outage also labels the customer's tokens, and an incident on
    tokens also labels premium_tokens when the customer uses the premium model.
    """
    n, days = expected["api_calls"].shape
    steady = (cust.start_day == 0) & (cust.stop_day == days)
    guard = {"api_calls": API_GUARD, "tokens": TOKENS_GUARD}
    typical = {m: np.median(x, axis=1) for m, x in expected.items()}
    premium = cust.model_mix[:, PREMIUM_MODEL] > 0
    order = [int(i) for i in rng.permutation(n)]
    taken: dict[tuple[int, str], list[tuple[int, int]]] = {}
    plan = _Plan()

    def hit(i: int, meter: str, kind: str) -> list[str]:
        meters = [meter]
        if meter == "api_calls" and kind == "drop_to_zero" and cust.completion_ratio[i] > 0:
            meters.append("tokens")
        if "tokens" in meters and premium[i]:
            meters.append("premium_tokens")
        return meters

    def free(i: int, meters: list[str], lo: int, hi: int) -> bool:
        return all(
            hi + SEPARATION_DAYS <= a or b + SEPARATION_DAYS <= lo
            for m in meters
            for a, b in taken.get((i, m), [])
        )

    def candidates(meter: str) -> list[tuple[int, bool]]:
        ok = steady & (typical[meter] > 0)
        strong = [i for i in order if ok[i] and typical[meter][i] >= GUARD_MARGIN * guard[meter]]
        weak = sorted(
            set(np.flatnonzero(ok).tolist()) - set(strong), key=lambda i: -typical[meter][i]
        )
        used = {i for i, _ in taken}
        tiers = [
            [i for i in strong if i not in used],
            [i for i in strong if i in used],
            [i for i in weak if i not in used],
            [i for i in weak if i in used],
        ]
        return [(i, t < 2) for t, tier in enumerate(tiers) for i in tier]

    def local_hour(i: int, ts: int) -> tuple[int, int]:
        """Local day and hour of ts; hour >= 24 past the last local day of the grid."""
        day = int(np.searchsorted(day_start[i], ts, side="right")) - 1
        return day, int((ts - day_start[i, day]) // 3600)

    def window_days(when: str, length: int) -> range:
        last = days - 1 - length  # latest first day that ends before the demo's last day
        lo, hi = {
            "last": (days - 2, days - 2),
            "recent": (days - 28, days - 4),
            "shift": (days - 42, days - 21),
            "earlier": (21, days - 35),
        }[when]
        lo, hi = max(lo, 14), min(hi, last)
        return range(lo, hi + 1) if lo <= hi else range(14, max(last, 14) + 1)

    for kind, meter, factor, length, when in INCIDENTS:
        for i, strong in candidates(meter):
            b2c = int(cust.b2c[i])
            if kind == "retry_storm":  # "now": 4-6 hours before the data ends, in a busy hour
                starts = []
                for ts0 in (t1 - 6 * 3600, t1 - 5 * 3600, t1 - 4 * 3600):
                    day, hour = local_hour(i, ts0)
                    if hour >= 24:
                        continue
                    per_hour = expected[meter][i, day] * diurnal[b2c, hour]
                    if diurnal[b2c, hour] >= 0.6 * diurnal[b2c].max() and (
                        not strong or per_hour >= 2 * guard[meter] / 24
                    ):
                        starts.append(ts0)
                if not starts or not free(i, hit(i, meter, kind), days - 1, days):
                    continue
                ts0 = starts[0]
                ts1 = ts0 + STORM_HOURS * 3600
                mean = 0.0  # requests expected in those hours
                for ts in range(ts0, ts1, 3600):
                    day, hour = local_hour(i, ts)
                    mean += lam[meter][i, day] * diurnal[b2c, hour % 24]
                plan.storms.append((i, ts0, ts1, int(rng.poisson((factor - 1) * max(mean, 20.0)))))
                span, window = (days - 1, days), (ts0, ts1)
            else:
                good = [
                    first
                    for first in window_days(when, length)
                    if (cust.b2c[i] or weekday[first] < 5 or when == "last")
                    and (not strong or expected[meter][i, first] >= 2 * guard[meter])
                    and free(i, hit(i, meter, kind), first, days if length == 0 else first + length)
                ]
                if not good:
                    continue
                first = int(good[int(rng.integers(len(good)))])
                last = days if length == 0 else first + length
                span = (first, last)
                window = (int(day_start[i, first]), int(day_start[i, last]) if last < days else t1)
                for m in hit(i, meter, kind):
                    if m != "premium_tokens":
                        plan.effects.append((i, m, first, last, factor))
            for m in hit(i, meter, kind):
                taken.setdefault((i, m), []).append(span)
                plan.labels.append(Anomaly(i, m, kind, *window, factor))
            break
    plan.labels.sort(key=lambda a: (a.start_ts, a.cust, a.meter_code))
    return plan


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
