"""`python3 -m imsbench` (with bench/ on sys.path): same as `python3 bench/run.py`."""
import sys

from .cli import entry

sys.exit(entry())
