"""Embedded webhook delivery benchmark: N signed messages to a local verifying receiver.

    .venv/bin/python benchmarks/bench_webhooks.py                    # 10,000 messages, 3 runs
    .venv/bin/python benchmarks/bench_webhooks.py --messages 2000 --runs 1 --workers 8

Starts ``tests/webhook_receiver.py`` as a child process (it verifies every message with the
official ``svix.webhooks.Webhook`` and answers 204), queues N ``usage.threshold_crossed``
messages of realistic size in a fresh SQLite delivery store, then times one
``drain(store, now)``: claim in batches, sign, POST over keep-alive connections from a thread
pool, record every attempt. Prints, per run and as the median of the runs: messages/s, the
p50/p99 attempt latency (from the attempts table), and the peak RSS of this process
(``resource.getrusage``) and of the receiver (psutil). Checks that the receiver accepted
exactly N messages and rejected none. Figures are printed, never asserted beyond that.
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from meterworks.webhooks import DeliveryStore, EmbeddedSender, drain  # noqa: E402
from meterworks.webhooks.settings import WebhookSettings  # noqa: E402
from meterworks.webhooks.signing import generate_secret  # noqa: E402

NOW = datetime(2026, 3, 2, 9, 0, 0)


def payload(i: int) -> dict:
    alert_id = f"thr_{i:032x}"
    return {
        "schema_version": 1,
        "event_type": "usage.threshold_crossed",
        "alert_id": alert_id,
        "customer_id": "cus_bench",
        "meter_code": "api_calls",
        "period_start": "2026-03-01T00:00:00Z",
        "period_end": "2026-04-01T00:00:00Z",
        "threshold": {"kind": "percent", "value": 80, "unit": "percent_of_included"},
        "included": 100000,
        "quantity": 80000 + i,
        "percent_used": 80.0,
        "currency": "usd",
        "amount_to_date": 123456,
        "projected_amount": 234567,
        "period_closed": False,
        "evaluated_at": "2026-03-02T09:00:00Z",
    }


def start_receiver(secret: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "webhook_receiver.py"), "--secret", secret],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1"):
        proc.kill()
        raise SystemExit(f"receiver did not start: {url!r}")
    return proc, url


def one_run(n: int, workers: int, batch_size: int) -> dict:
    secret = generate_secret()
    receiver, url = start_receiver(secret)
    receiver_peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal receiver_peak
        proc = psutil.Process(receiver.pid)
        while not stop.is_set():
            try:
                receiver_peak = max(receiver_peak, proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with tempfile.TemporaryDirectory() as tmp:
        state = f"sqlite:///{Path(tmp) / 'state.db'}"
        store = DeliveryStore.open(state)
        store.upsert_endpoint("cus_bench", url, now=NOW, secret=secret)
        store.add_messages(
            (
                {
                    "message_id": f"thr_{i:032x}",
                    "event_type": "usage.threshold_crossed",
                    "customer_id": "cus_bench",
                    "body": json.dumps(payload(i), sort_keys=True, separators=(",", ":")),
                    "created_at": NOW,
                }
                for i in range(n)
            ),
            mode="embedded",
            now=NOW,
        )
        sender = EmbeddedSender(timeout=15, workers=workers)
        started = time.perf_counter()
        report = drain(
            store,
            NOW,
            sender=sender,
            settings=WebhookSettings(state_url=state),
            batch_size=batch_size,
        )
        elapsed = time.perf_counter() - started
        sender.close()
        counts = store.counts()
        store.close()
    stop.set()
    receiver.send_signal(signal.SIGTERM)
    out, _ = receiver.communicate(timeout=10)
    latencies = sorted(report.latencies_ms)
    return {
        "messages": n,
        "seconds": round(elapsed, 3),
        "messages_per_s": round(n / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2),
        "succeeded": counts.get("succeeded", 0),
        "receiver": out.strip(),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "receiver_peak_rss_mb": round(receiver_peak / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    runs = []
    for k in range(args.runs):
        result = one_run(args.messages, args.workers, args.batch_size)
        print(f"run {k + 1}: {json.dumps(result)}", flush=True)
        if result["succeeded"] != args.messages or result["receiver"] != (
            f"received={args.messages} rejected=0"
        ):
            raise SystemExit(f"not every message was delivered and verified: {result}")
        runs.append(result)
    summary = {
        key: statistics.median(r[key] for r in runs)
        for key in ("messages_per_s", "p50_ms", "p99_ms", "peak_rss_mb", "receiver_peak_rss_mb")
    }
    print(
        f"median of {len(runs)} runs ({args.messages} messages, {args.workers} workers): "
        f"{summary['messages_per_s']:.0f} messages/s, p50 {summary['p50_ms']:.2f} ms, "
        f"p99 {summary['p99_ms']:.2f} ms, peak RSS {summary['peak_rss_mb']:.0f} MB "
        f"(receiver {summary['receiver_peak_rss_mb']:.0f} MB)"
    )


if __name__ == "__main__":
    main()
