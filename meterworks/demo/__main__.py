"""``python -m meterworks.demo OUT_DIR [--seed N --customers N --days N --end YYYY-MM-DD]``."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from meterworks.demo import generate_demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meterworks.demo")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--end", type=date.fromisoformat, help="last day of usage (UTC)")
    args = parser.parse_args(argv)
    summary = generate_demo(
        args.out_dir, seed=args.seed, customers=args.customers, days=args.days, end=args.end
    )
    print(f"{summary} ({summary.seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
