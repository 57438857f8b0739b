"""`python -m benchmarks [NAME [OPTIONS]]`: run one benchmark, or all; print a table, keep JSON.

With no name, every benchmark runs with its defaults (the outbox one queues 10,000 DMs at
50 calls/s, about 200 s). Options after a single benchmark's name go to that benchmark:
`python -m benchmarks outbox --count 1000 --postgres`.
"""

from __future__ import annotations

import importlib
import sys

from benchmarks import Figures

# Imported only when run, so one benchmark's dependencies never stand in another's way.
BENCHMARKS = (
    "startup",
    "inbound",
    "outbox",
    "teams",
    "fanout",
    "matching",
    "redirect",
    "digest",
    "linkedin",
    "program",
    "feeds",
)


def run(name: str, options: list[str]) -> Figures:
    module = importlib.import_module(f"benchmarks.{name}")
    figures: Figures = module.main(options)
    return figures


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print("benchmarks:", ", ".join(BENCHMARKS))
        return 0
    if not argv:
        for name in BENCHMARKS:
            run(name, [])
        return 0
    name, options = argv[0], argv[1:]
    if name not in BENCHMARKS:
        print(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    run(name, options)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
