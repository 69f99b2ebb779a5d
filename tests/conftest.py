"""Shared test setup: import the project from the repository root, and point the WikiText-2
loader (and the notebook kernels that nbval starts) at the offline corpus."""
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from booktools.__main__ import use_offline_corpus  # noqa: E402

# The validation and test splits, not the official training split (see booktools.book).
use_offline_corpus()
