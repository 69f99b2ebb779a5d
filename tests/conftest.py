"""Shared test setup: point the WikiText-2 loader (and the notebook kernels that nbval starts)
at the offline corpus, and put nbval's notebooks in the `notebook` tier."""

import pytest

from booktools.corpus import use_offline_corpus

# The validation and test splits, not the official training split (see booktools.corpus).
use_offline_corpus()


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.suffix == '.ipynb':
            item.add_marker(pytest.mark.notebook)
