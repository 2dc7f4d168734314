"""Benchmark entry point: ``python benchmarks/run.py [--smoke] [--profile] [--out DIR]``.

The same as ``glassnet bench``; see ``glassnet bench --help``.
"""
import sys

from glassnet.apps.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
