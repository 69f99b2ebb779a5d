"""The book's Sphinx extensions, one small module per feature, each with its own ``setup``.

``extensions: [booktools.sphinxext]`` in ``_config.yml`` loads them all:

* :mod:`.tabs`: MXNet | PyTorch tabs around the code cells of the tabbed pages;
* :mod:`.search_ja`: a Japanese search splitter that also indexes whole words;
* :mod:`.bibliography`: every page that cites a work lists its own references;
* :mod:`.assets`: the favicon, ``book-ja.js`` (Japanese UI strings, sidebar toggles, search
  snippets) and ``book.css`` (wrapped code lines), HTML builders only;
* :mod:`.exercise_ja`: 演習, the book's word for an exercise, in sphinx-exercise's titles;
* :mod:`.pdf_links`: the front page links the PDFs (``make pdf``), HTML builders only.
"""

from typing import Any

from sphinx.application import Sphinx

FEATURES = ('tabs', 'search_ja', 'bibliography', 'assets', 'exercise_ja', 'pdf_links')


def setup(app: Sphinx) -> dict[str, Any]:
    for feature in FEATURES:
        app.setup_extension(f'{__name__}.{feature}')
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
