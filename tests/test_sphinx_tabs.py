"""In-process Sphinx build (sphinx.testing) of the framework-tabs transform on a two-cell page."""

import nbformat
import pytest
from docutils import nodes
from sphinx.testing.util import SphinxTestApp

from booktools.frameworks import SYNC_GROUP, TAB_METADATA_KEY, TITLES


def _cell(source, framework):
    cell = nbformat.v4.new_code_cell(source, metadata={TAB_METADATA_KEY: framework})
    cell.outputs = [nbformat.v4.new_output('stream', text=f'{framework} output\n')]
    cell.execution_count = 1
    return cell


@pytest.fixture
def app(tmp_path):
    (tmp_path / 'conf.py').write_text(
        "extensions = ['myst_nb', 'booktools.sphinxext.tabs']\nnb_execution_mode = 'off'\n",
        encoding='utf-8',
    )
    page = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell('# Page'),
            _cell("x = 'mxnet'", 'mxnet'),
            _cell("x = 'pytorch'", 'pytorch'),
            nbformat.v4.new_markdown_cell('After the tabs.'),
        ]
    )
    page.metadata['kernelspec'] = {
        'name': 'python3',
        'display_name': 'Python 3',
        'language': 'python',
    }
    nbformat.write(page, tmp_path / 'index.ipynb')
    app = SphinxTestApp('html', srcdir=tmp_path, status=None, warning=None)
    yield app
    app.cleanup()


def test_consecutive_framework_cells_become_one_synced_tab_set(app):
    app.build()
    doctree = app.env.get_doctree('index')
    tab_sets = [n for n in doctree.findall(nodes.container) if 'framework-tabs' in n['classes']]
    assert len(tab_sets) == 1
    labels = [n for n in tab_sets[0].findall(nodes.rubric)]
    assert [label.astext() for label in labels] == [TITLES['mxnet'], TITLES['pytorch']]
    assert {label['sync_group'] for label in labels} == {SYNC_GROUP}
    assert [label['sync_id'] for label in labels] == ['mxnet', 'pytorch']
    text = tab_sets[0].astext()
    assert "x = 'mxnet'" in text and 'pytorch output' in text
    assert 'After the tabs.' not in text  # prose after the group stays outside

    html = (app.outdir / 'index.html').read_text(encoding='utf-8')
    assert html.count('sd-tab-set') >= 1 and 'data-sync-group="framework"' in html
