"""Tests of the build tooling: parsing, markup conversion, extraction, notebooks, sync."""

import ast
import shutil
import subprocess
import sys
import types

import nbformat
import pytest

from booktools import __main__ as cli
from booktools import book, library, markup, notebooks, paths, source
from booktools.frameworks import FRAMEWORKS

CHAPTER = """\
# Title
:label:`sec_demo`

Intro with :numref:`sec_demo` and :cite:`Devlin.Chang.Lee.ea.2018`.

```{.python .input}
x = 'mxnet'
```

```{.python .input}
#@tab pytorch
#@save
def f(a):
    # a comment before the body
    return a
```

```{.python .input}
#@tab all
#@check_output
(2, 3)
```

:begin_tab:`pytorch`
Only PyTorch.
:end_tab:

## 演習

:begin_exercise:`ex_demo`
Question?

```{.python .input}
#@tab all
answer = None
```
:end_exercise:

:begin_solution:`ex_demo`
Because.

```{.python .input}
#@tab all
answer = 42
```
:end_solution:
"""


@pytest.fixture
def items():
    return source.parse(CHAPTER)


def test_parse_tabs_and_markers(items):
    code = [i for i in items if i.kind == 'code']
    assert [c.tab for c in code] == ['mxnet', 'pytorch', 'all', 'all', 'all']
    assert [c.save for c in code] == [False, True, False, False, False]
    assert code[1].text.startswith('#@save\ndef f')  # readers still see #@save
    assert code[2].tags == ('nbval-check-output',) and '#@check_output' not in code[2].text
    assert [c.line for c in code] == [6, 10, 18, 33, 42]  # the opening fences
    assert code[3].region == ('exercise', 'ex_demo')
    assert code[4].region == ('solution', 'ex_demo')
    prose = [i for i in items if i.kind == 'markdown' and i.tab]
    assert [(p.tab, p.text) for p in prose] == [('pytorch', 'Only PyTorch.')]


@pytest.mark.parametrize(
    'bad, message',
    [
        ('```{.python .input}\n#@tab jax\nx\n```', 'unknown tab'),
        ('```{.python .input}\nx\n', 'never closed'),
        (':end_solution:', 'without its begin'),
        (':begin_exercise:`a`\ntext', 'never closed'),
        ('```{.python .input}\n#@sav\nx\n```', 'unknown marker'),
    ],
)
def test_parse_rejects_bad_markup(bad, message):
    with pytest.raises(source.SourceError, match=message):
        source.parse(bad)


def test_labels_and_title(items):
    assert source.labels(items) == {'sec_demo': 'Title'}
    assert source.title(items) == 'Title'


def test_myst_moves_labels_above_headings_and_converts_roles():
    text = '# Title\n:label:`sec_demo`\n\nSee :numref:`sec_demo` :cite:`A.B.2020`.'
    assert markup.to_myst(text, {'sec_demo'}) == (
        '(sec_demo)=\n# Title\n\nSee {numref}`sec_demo` {cite:p}`A.B.2020`.'
    )
    with pytest.raises(markup.UnknownLabel, match='sec_missing'):
        markup.to_myst(':numref:`sec_missing`', {'sec_demo'})


def test_notebook_markdown_has_links_and_readable_citations():
    text = 'See :numref:`sec_demo` :cite:`Devlin.Chang.Lee.ea.2018,Merity.Xiong.2016`.'
    out = markup.to_notebook_markdown(text, {'sec_demo': ('demo.ipynb', 'Title')})
    assert out == ('See [Title](<demo.ipynb#Title>) (Devlin et al., 2018; Merity and Xiong, 2016).')


def test_notebook_links_open_the_section_of_the_label():
    """JupyterLab's heading ids are the heading's text with hyphens for spaces."""
    labels = {'subsec_input': ('bert.ipynb', '入力表現 (input representation)')}
    out = markup.to_notebook_markdown('See :numref:`subsec_input`.', labels)
    assert out == (
        'See [入力表現 (input representation)](<bert.ipynb#入力表現-(input-representation)>).'
    )


def test_library_adds_section_docstrings(items):
    text = library.module_text('pytorch', [('chapters/demo.md', 'sec_demo', items)])
    module = ast.parse(text)
    f = next(n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == 'f')
    assert ast.get_docstring(f) == 'Defined in :numref:`sec_demo`.'
    assert "x = 'mxnet'" not in text  # not #@save
    assert 'def f' not in library.module_text('mxnet', [('chapters/demo.md', 'sec_demo', items)])
    assert '# chapters/demo.md, line 10\n' in text  # where the block comes from


def test_library_keeps_existing_docstrings():
    code = source.parse(
        '```{.python .input}\n#@tab all\n#@save\nclass C:\n    """Doc line."""\n    x = 1\n```'
    )
    text = library.module_text('mxnet', [('chapters/c.md', 'sec_c', code)])
    cls = next(n for n in ast.parse(text).body if isinstance(n, ast.ClassDef))
    assert ast.get_docstring(cls) == 'Doc line.\n\nDefined in :numref:`sec_c`.'


def test_framework_notebooks_pick_their_cells(items):
    index = {'sec_demo': ('demo.ipynb', 'Title')}
    mx = notebooks.framework_notebook(items, 'mxnet', index)
    pt = notebooks.framework_notebook(items, 'pytorch', index)
    mx_code = [c.source for c in mx.cells if c.cell_type == 'code']
    pt_code = [c.source for c in pt.cells if c.cell_type == 'code']
    assert "x = 'mxnet'" in mx_code and "x = 'mxnet'" not in pt_code
    assert any(s.startswith('#@save\ndef f') for s in pt_code)
    assert not any('Only PyTorch.' in c.source for c in mx.cells)
    assert any('Only PyTorch.' in c.source for c in pt.cells)
    checked = [c for c in pt.cells if 'nbval-check-output' in c.metadata.get('tags', [])]
    assert [c.source for c in checked] == ['(2, 3)']
    nbformat.validate(pt)


def test_student_copy_drops_every_solution_cell(items):
    nb = notebooks.framework_notebook(items, 'pytorch', {'sec_demo': ('d.ipynb', 'T')})
    student = notebooks.student_copy(nb)
    text = '\n'.join(c.source for c in student.cells)
    assert 'answer = 42' not in text and 'Because.' not in text
    assert 'answer = None' in text and 'Question?' in text


def test_exercises_are_numbered_as_in_the_html_book(items):
    """sphinx-exercise numbers per section: 演習 <chapter>.<section>.<n>."""
    nb = notebooks.framework_notebook(
        items, 'pytorch', {'sec_demo': ('d.ipynb', 'T')}, chapter_number=3
    )
    headings = [c.source for c in nb.cells if c.source.startswith('**')]
    # the demo chapter's exercise sits in its first `##` section
    assert headings[0] == '**演習 3.1.1**'
    assert headings[1].startswith('**解答 演習 3.1.1**')


def test_solution_cells_are_collapsed_in_jupyterlab_with_a_notice(items):
    nb = notebooks.framework_notebook(items, 'pytorch', {'sec_demo': ('d.ipynb', 'T')})
    solution = [c for c in nb.cells if 'solution' in c.metadata.get('tags', [])]
    heading, *body = solution
    assert heading.source.startswith('**解答 演習 1**') and '折りたたまれて' in heading.source
    assert 'jupyter' not in heading.metadata, 'the notice itself stays visible'
    assert body and all(
        c.metadata['jupyter'] == {'source_hidden': True, 'outputs_hidden': True} for c in body
    )
    assert any('answer = 42' in c.source for c in body)
    others = [c for c in nb.cells if c not in solution]
    assert not any('jupyter' in c.metadata for c in others)
    nbformat.validate(nb)


def _executed(nb, framework):
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        if cell.cell_type == 'code':
            cell.execution_count = 1
            cell.outputs = [nbformat.v4.new_output('stream', text=f'{framework} out\n')]
    return nb


def test_tabbed_notebook_pairs_frameworks_with_their_outputs(items):
    index = {'sec_demo': ('demo.ipynb', 'Title')}
    executed = {
        fw: _executed(notebooks.framework_notebook(items, fw, index), fw)
        for fw in source.FRAMEWORKS
    }
    page = notebooks.tabbed_notebook(items, 'demo', executed, {'sec_demo'})
    shared = [c for c in page.cells if c.cell_type == 'code' and c.source == '(2, 3)']
    assert [(c.metadata['tab'], c.outputs[0]['text']) for c in shared] == [
        ('mxnet', 'mxnet out\n'),
        ('pytorch', 'pytorch out\n'),
    ]
    markdown = '\n'.join(c.source for c in page.cells if c.cell_type == 'markdown')
    assert '(sec_demo)=\n# Title' in markdown
    assert ':sync-group: framework' in markdown and ':sync: pytorch' in markdown
    assert '{download}`PyTorch 版 <downloads/demo-pytorch.ipynb>`' in markdown
    assert '{download}`MXNet 版 <downloads/demo-mxnet.ipynb>`' in markdown
    assert '```{solution-start} ex_demo' in markdown
    student = notebooks.tabbed_notebook(items, 'demo', executed, {'sec_demo'}, student=True)
    assert 'answer = 42' not in str(student) and 'solution-start' not in str(student)


def test_tabbed_notebook_refuses_stale_outputs(items):
    index = {'sec_demo': ('demo.ipynb', 'Title')}
    executed = {
        fw: _executed(notebooks.framework_notebook(items, fw, index), fw)
        for fw in source.FRAMEWORKS
    }
    executed['pytorch'].cells[-1].source = 'answer = 41'
    with pytest.raises(ValueError, match='out of date'):
        notebooks.tabbed_notebook(items, 'demo', executed, {'sec_demo'})


def test_code_cell_ids_ignore_prose(items):
    """Outputs belong to code: adding prose renumbers no code cell."""
    index = {'sec_demo': ('demo.ipynb', 'Title')}
    more_prose = source.parse(CHAPTER.replace('Only PyTorch.', 'Only PyTorch.\n\n## New\n\nMore.'))
    ids = [
        [
            c.id
            for c in notebooks.framework_notebook(i, 'pytorch', index).cells
            if c.cell_type == 'code'
        ]
        for i in (items, more_prose)
    ]
    assert ids[0] == ids[1] == ['code-002', 'code-003', 'code-004', 'code-005']


def _demo_book(tmp_path, chapter=CHAPTER):
    (tmp_path / '_toc.yml').write_text('root: index\nchapters:\n- file: chapters/tabbed/demo\n')
    (tmp_path / 'chapters').mkdir(exist_ok=True)
    (tmp_path / 'chapters' / 'demo.md').write_text(chapter, encoding='utf-8')
    return tmp_path


class _FakeClient:
    """Stands in for nbclient.NotebookClient: every code cell gets one output."""

    def __init__(self, nb, **options):
        self.nb = nb

    def execute(self):
        for cell in self.nb.cells:
            if cell.cell_type == 'code':
                cell.execution_count = 1
                cell.outputs = [nbformat.v4.new_output('stream', text='ran\n')]


@pytest.fixture
def run_notebooks(monkeypatch):
    """`booktools execute` without a kernel: run(root, which) executes those notebooks (all
    of the tree's by default) as the command does, recording what they ran against."""
    monkeypatch.setitem(sys.modules, 'nbclient', types.SimpleNamespace(NotebookClient=_FakeClient))

    def run(root, which=None):
        if which is None:
            which = [
                _notebook(root, name, fw) for name in book.chapter_names(root) for fw in FRAMEWORKS
            ]
        cli._execute(which, root)

    return run


def _notebook(root, name, framework):
    return paths.notebook_path(name, framework, root)


def _code_outputs(root, framework):
    nb = book.read_notebook(paths.notebook_path('demo', framework, root))
    return [c.outputs for c in nb.cells if c.cell_type == 'code']


def test_prose_edit_keeps_every_output(tmp_path, run_notebooks):
    root = _demo_book(tmp_path)
    assert len(book.sync(root)) == 2  # new notebooks: both need executing
    run_notebooks(root)
    assert book.sync(root) == [] and book.out_of_sync(root) == []
    before = {fw: _code_outputs(root, fw) for fw in source.FRAMEWORKS}

    _demo_book(root, CHAPTER.replace('Intro with', 'A new paragraph.\n\nIntro (typo fix) with'))
    assert any('update' == e.state for e in book.plan(root))
    assert book.sync(root) == [] and book.out_of_sync(root) == []
    for fw in source.FRAMEWORKS:
        nb = book.read_notebook(paths.notebook_path('demo', fw, root))
        assert any('A new paragraph.' in c.source for c in nb.cells)
        assert _code_outputs(root, fw) == before[fw]
        assert notebooks.is_executed(nb)


def test_code_edit_makes_exactly_that_notebook_stale(tmp_path, run_notebooks):
    root = _demo_book(tmp_path)
    book.sync(root)
    run_notebooks(root)
    _demo_book(root, CHAPTER.replace("x = 'mxnet'", "x = 'mxnet, changed'"))
    states = {e.path.name + '/' + e.path.parent.name: e.state for e in book.plan(root)}
    assert states['demo.ipynb/mxnet'] == 'stale'
    assert states['demo.ipynb/pytorch'] == 'current'
    assert book.sync(root) == [paths.notebook_path('demo', 'mxnet', root)]
    [problem] = book.out_of_sync(root)
    assert 'mxnet/demo.ipynb has code cells that were never executed' in problem
    assert problem.endswith('(run `make notebooks`)')


# -- What the outputs ran against ----------------------------------------------------------

LAUNCH = """\
```{.python .input}
#@tab pytorch
import sys
command = [sys.executable, '-m', 'd2l_extras.launched']
```

"""
#: the demo chapter, with a MXNet cell that imports d2l_extras.helper and a PyTorch cell that
#: launches d2l_extras.launched (as the distributed chapter launches its workers)
DEPENDENT = CHAPTER.replace(
    "x = 'mxnet'", 'from d2l_extras import helper\nx = helper.VALUE'
).replace(
    '```{.python .input}\n#@tab all\n#@check_output',
    LAUNCH + '```{.python .input}\n#@tab all\n#@check_output',
)
MODULES = {
    '__init__.py': '"""The demo library."""\n',
    'helper.py': '"""Used by MXNet."""\n\nfrom d2l_extras import _shared\n\n'
    'VALUE = _shared.BASE + 1\n',
    '_shared.py': '"""Used by both, through other modules."""\n\n'
    'BASE = 41  # the answer, less one\n',
    'launched.py': '"""Started with -m."""\n\nfrom ._shared import BASE\n\nprint(BASE)\n',
    'unused.py': 'X = 1\n',
}


def _dependent_book(tmp_path):
    root = _demo_book(tmp_path, DEPENDENT)
    (root / 'd2l_extras').mkdir()
    for name, text in MODULES.items():
        (root / 'd2l_extras' / name).write_text(text, encoding='utf-8')
    return root


def _edit(path, old, new):
    text = path.read_text(encoding='utf-8')
    assert old in text, f'{path}: {old!r} not found'
    path.write_text(text.replace(old, new, 1), encoding='utf-8')


def _needing_execution(root):
    return {e.path: e for e in book.plan(root) if e.state in book.NEEDS_EXECUTION}


def test_a_module_digest_leaves_out_comments_docstrings_and_layout():
    digest = library.code_digest
    code = 'def f(a, b):\n    """Doc."""\n    return a + b  # sum\n'
    assert digest(code) == digest('def f(a,\n      b):\n    return (a + b)\n')
    assert digest(code) == digest('# chapters/x.md, line 9\n"""Module."""\n' + code)
    assert digest(code) != digest(code.replace('a + b', 'a - b'))
    assert digest(code) != digest(code.replace('"""Doc."""', "'not a docstring'\n    x = 1"))


def test_the_modules_a_notebook_uses_are_found_through_imports_and_launches(tmp_path):
    root = _dependent_book(tmp_path)
    (root / 'd2l_extras' / 'sub').mkdir()
    (root / 'd2l_extras' / 'sub' / '__init__.py').write_text('from . import deep\n')
    (root / 'd2l_extras' / 'sub' / 'deep.py').write_text('from .. import unused\n')
    package = library.Package(root)
    files = {
        'from d2l_extras import helper': ['__init__', '_shared', 'helper'],
        "launch(['-m', 'd2l_extras.launched'])": ['__init__', '_shared', 'launched'],
        "path = 'd2l_extras/unused.py'": ['__init__', 'unused'],
        'import d2l_extras.sub': ['__init__', 'sub/__init__', 'sub/deep', 'unused'],
        '%time from d2l_extras import helper as h': ['__init__', '_shared', 'helper'],
        'import d2l_extras_other, os  # d2l_extras.helper in a comment': [],
    }
    for code, expected in files.items():
        assert list(package.used_by([code])) == [f'd2l_extras/{f}.py' for f in expected], code


def test_executing_records_what_the_outputs_ran_against(tmp_path, run_notebooks):
    root = _dependent_book(tmp_path)
    assert len(book.sync(root)) == 2
    run_notebooks(root)
    assert _needing_execution(root) == {} and book.out_of_sync(root) == []
    recorded = {
        fw: notebooks.executed_with(book.read_notebook(_notebook(root, 'demo', fw)))
        for fw in FRAMEWORKS
    }
    assert sorted(recorded['mxnet']) == [
        'code cells',
        'd2l_extras/__init__.py',
        'd2l_extras/_shared.py',
        'd2l_extras/helper.py',
    ]
    assert sorted(recorded['pytorch']) == [
        'code cells',
        'd2l_extras/__init__.py',
        'd2l_extras/_shared.py',
        'd2l_extras/launched.py',
    ]
    assert all(v.startswith('sha256:') for r in recorded.values() for v in r.values())


@pytest.mark.parametrize(
    'module, old, new, stale',
    [
        ('helper.py', 'BASE + 1', 'BASE + 2', ['mxnet']),
        ('launched.py', 'print(BASE)', 'print(BASE, flush=True)', ['pytorch']),
        ('_shared.py', 'BASE = 41', 'BASE = 40', ['mxnet', 'pytorch']),
        ('unused.py', 'X = 1', 'X = 2', []),
        # prose and layout: never
        ('_shared.py', 'through other modules', 'through the other modules', []),
        ('_shared.py', '# the answer, less one', '# reworded', []),
        ('helper.py', 'VALUE = _shared.BASE + 1', 'VALUE = (\n    _shared.BASE + 1\n)', []),
    ],
)
def test_a_module_edit_makes_the_notebooks_that_use_it_stale(
    tmp_path, run_notebooks, module, old, new, stale
):
    root = _dependent_book(tmp_path)
    book.sync(root)
    run_notebooks(root)
    _edit(root / 'd2l_extras' / module, old, new)
    expected = [_notebook(root, 'demo', fw) for fw in stale]
    assert sorted(_needing_execution(root)) == sorted(expected)
    for path in expected:
        problem = _needing_execution(root)[path].problem()
        assert 'is stale: the code changed in d2l_extras/' in problem
        assert problem.endswith('(run `make notebooks`)')
    # `make notebooks` (execute --stale) runs exactly those, and then nothing is stale
    assert sorted(book.sync(root)) == sorted(expected)
    run_notebooks(root, book.sync(root))
    assert book.out_of_sync(root) == []


def test_a_prose_edit_of_the_chapter_makes_no_notebook_stale(tmp_path, run_notebooks):
    root = _dependent_book(tmp_path)
    book.sync(root)
    run_notebooks(root)
    _edit(root / 'chapters' / 'demo.md', 'Intro with', 'A new paragraph.\n\nIntro with')
    assert _needing_execution(root) == {}
    assert book.sync(root) == [] and book.out_of_sync(root) == []


def test_a_notebook_executed_before_the_record_is_stale(tmp_path, run_notebooks):
    root = _dependent_book(tmp_path)
    book.sync(root)
    run_notebooks(root)
    path = _notebook(root, 'demo', 'mxnet')
    nb = book.read_notebook(path)
    del nb.metadata[notebooks.BOOK_METADATA][notebooks.EXECUTED_WITH]
    book.write_notebook(nb, path)
    [problem] = book.out_of_sync(root)
    assert problem == (
        f'{path} is stale: its outputs do not record the code they ran against '
        '(run `make notebooks`)'
    )
    assert book.sync(root) == [path]


def _copy_of_the_book(target):
    """The real chapters and d2l_extras in ``target``: sync'd and executed (without a
    kernel), so that only what the test changes afterwards can make a notebook stale."""
    shutil.copy2(paths.ROOT / '_toc.yml', target / '_toc.yml')
    (target / 'chapters').mkdir()
    for chapter in (paths.ROOT / 'chapters').glob('*.md'):
        shutil.copy2(chapter, target / 'chapters' / chapter.name)
    shutil.copytree(
        paths.ROOT / 'd2l_extras',
        target / 'd2l_extras',
        ignore=lambda folder, names: [n for n in names if not n.endswith('.py')],
    )
    return target


def _using(root, module):
    """The notebooks whose record says that their outputs ran against ``module``."""
    found = set()
    for name in book.chapter_names(root):
        for fw in FRAMEWORKS:
            path = _notebook(root, name, fw)
            if module in notebooks.executed_with(book.read_notebook(path)):
                found.add(path)
    return found


def test_the_books_notebooks_go_stale_with_the_code_they_use(tmp_path, run_notebooks):
    """On the real chapters and library: a statement in animator.py makes every notebook that
    imports it stale (all of them, through the preambles); one in mx_launch.py only the
    notebook that launches it; a library block of a chapter the notebooks of every chapter
    that import its framework's module; prose and docstrings none."""
    root = _copy_of_the_book(tmp_path)
    book.sync(root)
    run_notebooks(root)
    every = {_notebook(root, n, fw) for n in book.chapter_names(root) for fw in FRAMEWORKS}
    assert set(book.sync(root)) == set() and book.out_of_sync(root) == []

    # prose: the module docstring and a comment of animator.py, a new paragraph at the top
    # of every chapter (every `# chapters/..., line N` header of the library moves), and the
    # docstring of a #@save function (a code cell of its own chapter: those notebooks show
    # the new code, so they run again, as any code cell edit; but no other chapter's)
    animator = root / 'd2l_extras' / 'animator.py'
    _edit(animator, '"""', '"""Reworded. ')
    animator.write_text(animator.read_text(encoding='utf-8') + '# a closing comment\n')
    for chapter in (root / 'chapters').glob('*.md'):
        text = chapter.read_text(encoding='utf-8')
        chapter.write_text(text.replace('\n\n', '\n\nA new paragraph.\n\n', 1))
    bert = root / 'chapters' / 'bert.md'
    items = source.parse(bert.read_text(encoding='utf-8'))
    saved = next(i for i in items if i.kind == 'code' and i.save and '"""' in i.text)
    _edit(bert, saved.text, saved.text.replace('"""', '"""Reworded. ', 1))
    planned = book.plan(root)
    assert {e.path for e in planned if e.state in book.NEEDS_EXECUTION} == {
        _notebook(root, 'bert', fw) for fw in saved.frameworks()
    }
    assert all(e.state == 'stale' for e in planned if e.state in book.NEEDS_EXECUTION)
    assert {e.path for e in planned if e.state == 'update'} >= {
        book.library_path(fw, root) for fw in saved.frameworks()
    }
    run_notebooks(root, book.sync(root))
    assert book.out_of_sync(root) == []

    # one statement of a hand-written module: every notebook that imports it
    _edit(animator, '\nimport time\n', '\nimport time\n\n_EDITED = True\n')
    assert _using(root, 'd2l_extras/animator.py') == every
    assert set(book.sync(root)) == every
    assert all('d2l_extras/animator.py' in e.problem() for e in _needing_execution(root).values())
    run_notebooks(root, book.sync(root))

    # a module that only one notebook launches
    _edit(
        root / 'd2l_extras' / 'mx_launch.py',
        '\nimport argparse\n',
        '\nimport argparse\n\n_EDITED = True\n',
    )
    launching = _using(root, 'd2l_extras/mx_launch.py')
    assert 0 < len(launching) < len(every)
    assert set(book.sync(root)) == launching
    run_notebooks(root, book.sync(root))

    # a library block of one chapter (PyTorch only): that chapter's notebook changed its
    # own code; every other one that imports d2l_extras/torch.py ran against the old one
    items = source.parse(bert.read_text(encoding='utf-8'))
    saved = next(i for i in items if i.kind == 'code' and i.save and i.tab == 'pytorch')
    _edit(bert, saved.text, saved.text + '\n_EDITED = True')
    using = _using(root, 'd2l_extras/torch.py')
    assert _notebook(root, 'bert-dataset', 'pytorch') in using
    assert set(book.sync(root)) == using


def test_generated_notebooks_name_their_source(items):
    nb = notebooks.framework_notebook(
        items, 'pytorch', {'sec_demo': ('d.ipynb', 'T')}, source='chapters/demo.md'
    )
    meta = nb.metadata[notebooks.BOOK_METADATA]
    assert meta['source'] == 'chapters/demo.md'
    assert 'make sync' in meta['generated_by'] and 'make notebooks' in meta['executed_by']
    assert all(c.cell_type != 'markdown' or 'make sync' not in c.source for c in nb.cells)
    nbformat.validate(nb)


def test_planned_notebooks_carry_the_generated_metadata():
    for entry in book.plan():
        if entry.path.suffix == '.ipynb':
            meta = nbformat.reads(entry.text, as_version=4).metadata[notebooks.BOOK_METADATA]
            name = entry.path.stem
            assert meta['source'] == f'chapters/{name}.md'


def test_generated_files_are_marked_for_git():
    generated = [paths.notebook_path(n, fw) for n in book.chapter_names() for fw in FRAMEWORKS]
    generated += [book.library_path(fw) for fw in FRAMEWORKS]
    try:
        result = subprocess.run(
            ['git', 'check-attr', 'linguist-generated', '--', *map(str, generated)],
            cwd=paths.ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        pytest.skip('not a git checkout')
    assert result.stdout.count(': linguist-generated: set\n') == len(generated), result.stdout


def test_committed_files_match_the_sources():
    """Notebooks and d2l_extras are exactly what the chapters produce, and every stored
    output ran against the code that the chapters and d2l_extras hold now."""
    problems = book.out_of_sync()
    assert not problems, '\n'.join(problems)
