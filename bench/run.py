#!/usr/bin/env python3
"""Benchmark ims-action against Adobe's Node.js sample actions, all talking to adobe-emulator:
`make bench` (full run: BENCHMARKS.md, docs/bench-wan.svg, docs/bench.svg, bench/results.json)
and `make bench-quick` (smoke run under bench/.build/quick/). Method: bench/README.md. The code
is the `imsbench` package next to this file; `--help` lists the options."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from imsbench.cli import entry  # noqa: E402

if __name__ == "__main__":
    sys.exit(entry())
