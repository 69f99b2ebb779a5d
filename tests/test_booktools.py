"""Tests of the build tooling: parsing, markup conversion, extraction, notebooks, sync."""

import ast

import nbformat
import pytest

from booktools import book, library, markup, notebooks, paths, source

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


def _execute_all(root):
    """Stand-in for `booktools execute`: give every code cell an output."""
    for fw in source.FRAMEWORKS:
        path = paths.notebook_path('demo', fw, root)
        book.write_notebook(_executed(book.read_notebook(path), fw), path)


def _code_outputs(root, framework):
    nb = book.read_notebook(paths.notebook_path('demo', framework, root))
    return [c.outputs for c in nb.cells if c.cell_type == 'code']


def test_prose_edit_keeps_every_output(tmp_path):
    root = _demo_book(tmp_path)
    assert len(book.sync(root)) == 2  # new notebooks: both need executing
    _execute_all(root)
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


def test_code_edit_makes_exactly_that_notebook_stale(tmp_path):
    root = _demo_book(tmp_path)
    book.sync(root)
    _execute_all(root)
    _demo_book(root, CHAPTER.replace("x = 'mxnet'", "x = 'mxnet, changed'"))
    states = {e.path.name + '/' + e.path.parent.name: e.state for e in book.plan(root)}
    assert states['demo.ipynb/mxnet'] == 'stale'
    assert states['demo.ipynb/pytorch'] == 'current'
    assert book.sync(root) == [paths.notebook_path('demo', 'mxnet', root)]
    [problem] = book.out_of_sync(root)
    assert problem.endswith('mxnet/demo.ipynb has code cells that were never executed')


def test_committed_files_match_the_sources():
    """Notebooks and d2l_extras are exactly what the chapters produce."""
    assert book.out_of_sync() == []
