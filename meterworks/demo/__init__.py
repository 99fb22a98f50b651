"""Deterministic demo data: a usage-billed business's events in every shape, with the faults
real pipelines deliver, labelled anomalies, a catalog and the exact expected ingestion outcome.

    from meterworks.demo import generate_demo
    summary = generate_demo(Path("data/demo"), seed=7, customers=200, days=120)

See ``generator.py`` for the files written and ``deliver.py`` for how the expected outcome is
derived. ``python -m meterworks.demo OUT_DIR`` does the same from a shell.
"""

from meterworks.demo.generator import DemoSummary, generate_demo

__all__ = ["DemoSummary", "generate_demo"]
