"""A drain killed with SIGKILL mid-flight and restarted delivers everything, under one id."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from meterworks.config import REPO_ROOT
from meterworks.webhooks import DeliveryStore, EmbeddedSender, drain
from meterworks.webhooks.settings import WebhookSettings
from meterworks.webhooks.signing import generate_secret
from meterworks.webhooks.store import ABANDONED, SUCCEEDED
from tests.webhook_receiver import WebhookReceiver

T0 = datetime(2026, 3, 2, 9, 0, 0)
N = 300

CHILD = """
import sys
from datetime import datetime
from meterworks.webhooks import DeliveryStore, EmbeddedSender, drain
from meterworks.webhooks.settings import WebhookSettings

store = DeliveryStore.open(sys.argv[1])
print("draining", flush=True)
drain(store, datetime.fromisoformat(sys.argv[2]), sender=EmbeddedSender(timeout=5, workers=4),
      settings=WebhookSettings(state_url=sys.argv[1]), batch_size=20, worker="doomed")
print("finished", flush=True)
"""


def test_killed_mid_drain_then_restarted_delivers_all_once_per_id(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = DeliveryStore.open(url)
    with WebhookReceiver() as rx:
        endpoint_id, _ = store.upsert_endpoint(
            "acme", f"{rx.base_url}/acme", now=T0, secret=generate_secret()
        )
        rx.add_endpoint("/acme", store.endpoint_secret(endpoint_id), delay=0.01)
        ids = [f"thr_{i:032x}" for i in range(N)]
        store.add_messages(
            [
                {
                    "message_id": i,
                    "event_type": "usage.threshold_crossed",
                    "customer_id": "acme",
                    "body": json.dumps({"alert_id": i, "n": k}),
                    "created_at": T0,
                }
                for k, i in enumerate(ids)
            ],
            mode="embedded",
            now=T0,
        )
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, url, T0.isoformat()],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while rx.total() < N // 4 and time.monotonic() < deadline:
                time.sleep(0.005)
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
        out = child.stdout.read() if child.stdout else ""
        assert child.returncode == -signal.SIGKILL and "finished" not in out
        at_kill = rx.total()
        assert N // 4 <= at_kill < N, "the child must die mid-drain"

        # restart at once: leased deliveries wait for their lease; the rest go out
        sender = EmbeddedSender(timeout=5, workers=8)
        cfg = WebhookSettings(state_url=url)
        drain(store, T0 + timedelta(seconds=1), sender=sender, settings=cfg, worker="phoenix")
        leased = [d for d in store.deliveries(limit=N) if d["status"] != SUCCEEDED]
        assert 0 < len(leased) <= 40  # at most two batches were in flight
        assert store.next_due_at() > T0 + timedelta(seconds=1)  # their lease expiry
        # after the lease expires they are claimed again and sent under the same id
        drain(store, T0 + timedelta(hours=1), sender=sender, settings=cfg, worker="phoenix")
        sender.close()

    received = [d for d in rx.received["/acme"]]
    assert {d.msg_id for d in received} == set(ids)
    assert all(d.payload["alert_id"] == d.msg_id for d in received)  # one id per alert
    assert store.counts() == {SUCCEEDED: N}
    abandoned: set[str] = set()
    for i in ids:
        rows = store.attempts_of(i)
        assert [r["outcome"] for r in rows].count(SUCCEEDED) == 1
        abandoned |= {i for r in rows if r["outcome"] == ABANDONED}
        assert all(r["worker"] == "doomed" for r in rows if r["outcome"] == ABANDONED)
    assert abandoned == {d["message_id"] for d in leased}
    # a message reached the receiver twice only if its first attempt was cut off by the kill
    twice = {i for i, n in Counter(d.msg_id for d in received).items() if n > 1}
    assert twice <= abandoned
    assert len(received) - N == len(twice)
    store.close()
