"""The book's static files (``static/``): the favicon, ``book-ja.js`` (Japanese UI
strings, the sidebar toggles, search snippets) and ``book.css`` (wrapped code lines).
Registered for HTML builders only."""

from pathlib import Path
from typing import Any

from sphinx.application import Sphinx

STATIC_DIR = Path(__file__).resolve().parent / 'static'


def add_static_files(app: Sphinx) -> None:
    """Absolute paths, so a copy of the book's sources (the students' build) finds them."""
    if app.builder.format != 'html':
        return
    app.config.html_static_path.append(str(STATIC_DIR))
    if not app.config.html_favicon:
        app.config.html_favicon = str(STATIC_DIR / 'favicon.svg')
    # after translations.js, whose catalog it completes
    app.add_js_file('book-ja.js', priority=900)
    app.add_css_file('book.css')


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect('builder-inited', add_static_files)
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
