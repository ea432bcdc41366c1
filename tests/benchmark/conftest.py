"""The benchmark instruments live in projects/Benchmarks (not in the installed package):
their folder goes on sys.path, as running a script there puts it."""

import os
import sys

BENCHMARKS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "projects",
    "Benchmarks",
)
sys.path.insert(0, BENCHMARKS)
