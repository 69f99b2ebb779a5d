"""Offline checks of what the repository ships to readers: the committed notebooks (and, when
built, the HTML book), without a kernel or a browser."""

import os
import pathlib
import re

import nbformat
import pytest

from booktools import book, notebooks
from booktools.frameworks import FRAMEWORKS
from booktools.paths import ROOT, notebook_path

NOTEBOOKS = [notebook_path(name, fw) for name in book.chapter_names() for fw in FRAMEWORKS]
SITE = pathlib.Path(os.environ.get('BOOK_HTML_DIR', ROOT / '_build' / 'html'))

# An absolute path of a build machine: its checkout, a temporary folder, a home directory.
# (A URL such as https://host/tmp/x is not a path: the look-behind skips anything after a
# host name or a word character.)
_MACHINE_PATHS = [
    str(ROOT),
    '/work/',
    '/tmp/',
    '/var/tmp/',
    '/root/',
    '/home/',
    '/Users/',
    'C:\\\\Users\\\\',
    'C:\\Users\\',
]
MACHINE_PATH = re.compile(
    r'(?<![\w.:/-])(?:' + '|'.join(re.escape(p) for p in _MACHINE_PATHS) + r')'
)


def _ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


@pytest.fixture(params=NOTEBOOKS, ids=_ids(NOTEBOOKS))
def notebook(request):
    return request.param, nbformat.read(request.param, as_version=4)


def _outputs(nb):
    for cell in nb.cells:
        for output in cell.get('outputs', []):
            yield cell, output


def test_every_plot_is_stored_as_png(notebook):
    """JupyterLab renders no SVG of an untrusted notebook (every downloaded one); PNG it does."""
    path, nb = notebook
    for cell, output in _outputs(nb):
        data = output.get('data', {})
        if any(kind.startswith('image/') for kind in data) or 'Figure size' in str(
            data.get('text/plain', '')
        ):
            assert 'image/png' in data, f'{path.name} cell {cell.id}: a plot without image/png'


def test_solution_cells_are_collapsed_in_jupyterlab(notebook):
    path, nb = notebook
    solutions = [c for c in nb.cells if notebooks.SOLUTION_TAG in c.metadata.get('tags', [])]
    notices = [c for c in solutions if notebooks.SOLUTION_NOTICE in c.source]
    bodies = [c for c in solutions if c not in notices]
    if not solutions:
        pytest.skip(f'{path.name} has no solution')
    assert notices, f'{path.name}: no notice says that the solution cells are collapsed'
    for cell in bodies:
        assert cell.metadata.get('jupyter') == notebooks.COLLAPSED, (
            f'{path.name} cell {cell.id}: a solution cell is not collapsed in JupyterLab'
        )


def test_machine_path_pattern():
    assert MACHINE_PATH.search(f'{ROOT}/chapters/x.ipynb')
    assert MACHINE_PATH.search('注意: /tmp/tmpab12/wiki.train.tokens は')
    assert MACHINE_PATH.search("FileNotFoundError: '/root/.cache/d2l_extras'")
    assert not MACHINE_PATH.search('https://example.org/home/page and ../tmp/x')


def test_no_stored_output_holds_a_path_of_the_build_machine(notebook):
    """Expected to fail on notebooks executed before the corpus notice stopped printing the
    corpus directory (issue 13, item 3); they pass once re-executed."""
    path, nb = notebook
    found = []
    for cell, output in _outputs(nb):
        text = str(output)
        if m := MACHINE_PATH.search(text):
            found.append(f'cell {cell.id}: ...{text[max(m.start() - 40, 0) : m.end() + 40]}...')
    for cell in nb.cells:
        if m := MACHINE_PATH.search(cell.source):
            found.append(f'cell {cell.id} source: {cell.source[m.start() : m.end() + 40]!r}')
    assert not found, f'{path.name}:\n' + '\n'.join(found)


def test_no_html_page_holds_a_path_of_the_build_machine():
    pages = sorted(SITE.rglob('*.html')) + sorted(SITE.rglob('*.ipynb'))
    if not pages:
        pytest.skip(f'the HTML book is not built ({SITE}); run `make book`')
    found = []
    for page in pages:
        text = page.read_text(encoding='utf-8', errors='replace')
        if m := MACHINE_PATH.search(text):
            context = text[max(m.start() - 40, 0) : m.end() + 40]
            found.append(f'{page.relative_to(SITE)}: ...{context}')
    assert not found, '\n'.join(found)
