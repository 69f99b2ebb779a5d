"""The first cell of every generated notebook: what a reader installs outside the repository,
and the exact commands (fast checks; the `wheel` tier executes a downloaded notebook in a
fresh venv, tests/test_wheel.py)."""

import contextlib
import io
import tomllib

import nbformat
from IPython.core.inputtransformer2 import TransformerManager

from booktools import book, notebooks
from booktools.frameworks import FRAMEWORKS
from booktools.paths import ROOT


def _planned_notebooks():
    return {
        entry.path: nbformat.reads(entry.text, as_version=4)
        for entry in book.plan()
        if entry.path.suffix == '.ipynb'
    }


def test_every_generated_notebook_starts_with_the_install_cell():
    planned = _planned_notebooks()
    assert len(planned) == len(book.chapter_names()) * len(FRAMEWORKS)
    for path, nb in planned.items():
        framework = path.parent.name
        first = nb.cells[0]
        assert first.cell_type == 'code' and first.id == notebooks.INSTALL_CELL, path
        assert first.source == notebooks.install_cell(framework).source, path
        for command in notebooks.install_commands(framework):
            assert f'#   {command}' in first.source and f'    %{command}' in first.source


def test_the_install_cell_names_the_wheel_and_an_extra_that_pyproject_defines():
    project = tomllib.loads((ROOT / 'pyproject.toml').read_text(encoding='utf-8'))['project']
    assert notebooks.wheel_name() == f'bert_book-{project["version"]}-py3-none-any.whl'
    extras = project['optional-dependencies']
    for framework in FRAMEWORKS:
        install, d2l = notebooks.install_commands(framework)
        assert install == f"pip install '{notebooks.wheel_name()}[{framework}]'"
        assert framework in extras
        assert d2l == 'pip install --no-deps d2l==1.0.3'
    assert 'torch==2.14.1' in extras['pytorch'] and 'mxnet==1.9.1' in extras['mxnet']


def test_the_install_cell_does_nothing_where_the_library_is_importable():
    """In the repository's venv: no pip, no output (IPython's own transformation of %pip)."""
    calls = []

    class Shell:
        def run_line_magic(self, *args):
            calls.append(args)

    for framework in FRAMEWORKS:
        code = TransformerManager().transform_cell(notebooks.install_cell(framework).source)
        assert "run_line_magic('pip', 'install --no-deps d2l==1.0.3')" in code
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            exec(compile(code, 'install', 'exec'), {'get_ipython': lambda: Shell()})
        assert calls == [] and printed.getvalue() == ''
        # and where d2l_extras is missing, it runs both commands, in order
        missing = code.replace("find_spec('d2l_extras')", "find_spec('no_such_module_here')")
        exec(compile(missing, 'install', 'exec'), {'get_ipython': lambda: Shell()})
        assert [c[1] for c in calls] == [
            c.removeprefix('pip ') for c in notebooks.install_commands(framework)
        ]
        calls.clear()


def test_pages_and_pdfs_leave_the_install_cell_out():
    """The HTML book's tabbed pages and the PDFs' pages come from the chapters' items; the
    downloads the pages offer are the notebooks themselves, install cell first."""
    planned = _planned_notebooks()
    chapters = book.load_chapters()
    index = book.label_index(chapters)
    for name, (_, items) in chapters.items():
        executed = {fw: planned[ROOT / 'chapters' / fw / f'{name}.ipynb'] for fw in FRAMEWORKS}
        pages = [notebooks.tabbed_notebook(items, name, executed, index)]
        pages += [notebooks.tabbed_notebook(items, name, executed, index, student=True)]
        pages += [
            notebooks.tabbed_notebook(items, name, {fw: executed[fw]}, index, framework=fw)
            for fw in FRAMEWORKS
        ]
        for page in pages:
            assert not any(c.id.startswith(notebooks.INSTALL_CELL) for c in page.cells), name
            assert not any('find_spec' in c.source for c in page.cells), name


def test_fragments_get_no_install_cell_unless_asked():
    chapters = book.load_chapters()
    items, index = chapters['bert'][1], book.label_index(chapters)
    assert notebooks.framework_notebook(items, 'pytorch', index).cells[0].id != 'install'
    nb = notebooks.framework_notebook(items, 'pytorch', index, install=True)
    assert nb.cells[0].id == 'install'
    nbformat.validate(nb)


def test_the_library_that_reaches_students_holds_no_solution():
    """The wheel (on the students' site too) and the course's copies of d2l_extras are made
    of the #@save blocks: none may sit inside a solution."""
    for name, (_, items) in book.load_chapters().items():
        saved = [i for i in items if i.kind == 'code' and i.save]
        for item in saved:
            assert not (item.region and item.region[0] == 'solution'), f'{name}: {item.text[:60]}'
