"""Shared test setup: import the project from the repository root, and point the WikiText-2
loader (and the notebook kernels that nbval starts) at the offline corpus."""
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from booktools import book  # noqa: E402
from booktools.__main__ import OFFLINE_DIR, SHARED_DATA  # noqa: E402

# The validation and test splits, not the official training split (see booktools.book).
os.environ.setdefault('D2L_WIKITEXT2_DIR', str(book.offline_corpus(OFFLINE_DIR, SHARED_DATA)))
