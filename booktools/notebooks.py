"""Build notebooks from parsed chapter items: one plain notebook per framework (for JupyterLab
and nbval), and one tabbed page per chapter for the HTML book.

Cell ids come from the code cells alone: the k-th code block of a chapter is ``code-k`` in
every notebook, and prose is numbered after the code block it follows. Inserting or removing
prose renumbers nothing that outputs belong to, so a prose edit keeps every stored output
(:func:`with_outputs_of`), and the tabbed page finds each code cell's outputs by id.
"""

import copy
import tomllib

import nbformat

from . import markup
from .frameworks import FRAMEWORKS, TAB_METADATA_KEY, TITLES
from .paths import ROOT

KERNELSPEC = {'name': 'python3', 'display_name': 'Python 3 (ipykernel)', 'language': 'python'}
SOLUTION_TAG = 'solution'
REGION_TITLES = {'exercise': '演習', 'solution': '解答 演習'}  # as the HTML boxes say
#: JupyterLab's own cell metadata for a collapsed input and output (the ``solution`` tag alone
#: does nothing there); the cell still runs with Run All
COLLAPSED = {'source_hidden': True, 'outputs_hidden': True}
SOLUTION_NOTICE = (
    '（解答のセルは折りたたまれています。まず自分で解いてから、'
    'セルの左の青い線か「…」をクリックして開いてください。）'
)


#: the notebook metadata that this tooling writes and reads
BOOK_METADATA = 'd2l_book'
#: under BOOK_METADATA: what the outputs ran against, {'code cells' or a d2l_extras file:
#: digest}, recorded by ``booktools execute`` (see :func:`booktools.book.executed_with`)
EXECUTED_WITH = 'executed_with'


def generated_metadata(source):
    """What a generated notebook says about itself: where it comes from, how it is made."""
    return {
        'source': source,
        'generated_by': 'make sync (python -m booktools sync)',
        'executed_by': 'make notebooks (python -m booktools execute --stale)',
        'note': f'Generated from {source}: edit the chapter, not this notebook '
        '(make sync rewrites it; outputs are kept while the code they ran against is unchanged)',
    }


#: the id and tag of a generated notebook's first cell, which installs what it imports
INSTALL_CELL = 'install'
#: what the install cell installs beside the book's wheel, per framework: the wheel's extra
#: (``[project.optional-dependencies]`` in pyproject.toml) and d2l without its dependencies
#: (d2l 1.0.3 pins numpy 1.23.5, which has no wheel for Python 3.12 and 3.13)
D2L_STEP = 'pip install --no-deps d2l==1.0.3'
PYTHONS = {
    'mxnet': 'Python 3.11 のみ。MXNet 1.9.1 は NumPy 1.24 以降で動きません',
    'pytorch': 'Python 3.11〜3.13',
}


def wheel_name(root=ROOT):
    """The file name of the book's wheel (``make book`` puts it into the HTML site)."""
    project = tomllib.loads((root / 'pyproject.toml').read_text(encoding='utf-8'))['project']
    return f'{project["name"].replace("-", "_")}-{project["version"]}-py3-none-any.whl'


def install_commands(framework, root=ROOT):
    """The two commands that install what a notebook of ``framework`` imports, outside the
    repository: the book's wheel with the framework's extra, then d2l without dependencies."""
    return [f"pip install '{wheel_name(root)}[{framework}]'", D2L_STEP]


def install_cell(framework, root=ROOT):
    """The first cell of a generated notebook: what to install, and the exact commands. It
    installs only where ``d2l_extras`` cannot be imported, so in the repository's venv it
    does nothing and prints nothing (its stored output stays empty). The book's pages and
    PDFs leave it out: they are built from the chapters' items, not from these notebooks."""
    commands = install_commands(framework, root)
    lines = [
        '# 準備: この本のライブラリ d2l_extras と d2l 1.0.3、'
        f'{TITLES[framework]} をインストールします',
        f'# （{PYTHONS[framework]}）。本の表紙ページから',
        f'# {wheel_name(root)} をダウンロードし、このノートブックと同じフォルダに'
        '置いてから実行してください。',
        '# d2l_extras がすでにある環境（リポジトリの .venv など）では何もしません。ターミナルでは:',
        *(f'#   {command}' for command in commands),
        'import importlib.util',
        '',
        "if importlib.util.find_spec('d2l_extras') is None:",
        *(f'    %{command}' for command in commands),
    ]
    return nbformat.v4.new_code_cell(
        '\n'.join(lines), id=INSTALL_CELL, metadata={'tags': [INSTALL_CELL]}
    )


def executed_with(nb):
    """What ``nb``'s outputs were recorded to have run against, or None."""
    return nb.metadata.get(BOOK_METADATA, {}).get(EXECUTED_WITH)


def record_executed_with(nb, digests):
    nb.metadata.setdefault(BOOK_METADATA, {})[EXECUTED_WITH] = dict(digests)


def _new_notebook(cells):
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {'kernelspec': dict(KERNELSPEC), 'language_info': {'name': 'python'}}
    return nb


def _region_numbers(items, chapter_number=None):
    """Number the exercises of a chapter as the HTML book does (sphinx-exercise, numfig
    depth 2): ``3.4.1`` is the first exercise of section 4 of chapter 3. Without a chapter
    number, exercises count 1, 2, ... A solution gets its exercise's number."""
    numbers, section, in_section = {}, 0, 0
    for item in items:
        if item.kind == 'markdown':
            for line in item.text.splitlines():
                if line.startswith('## '):
                    section, in_section = section + 1, 0
        if item.region and item.region[0] == 'exercise' and item.region[1] not in numbers:
            in_section += 1
            numbers[item.region[1]] = (
                f'{chapter_number}.{section}.{in_section}'
                if chapter_number
                else str(len(numbers) + 1)
            )
    return numbers


class _CellIds:
    """``code-k`` for the k-th code item; ``md-k-n`` for the n-th prose cell after it."""

    def __init__(self):
        self.code, self.prose = 0, 0

    def next_code(self):
        self.code += 1
        self.prose = 0
        return f'code-{self.code:03d}'

    def next_prose(self):
        self.prose += 1
        return f'md-{self.code:03d}-{self.prose}'


def framework_notebook(
    items, framework, known_labels, chapter_number=None, source=None, install=None
):
    """The notebook of one framework, unexecuted.

    ``known_labels`` maps a label to (notebook file name, title) for cross-references.
    Solution cells carry the tag ``solution`` so a student copy can drop them. With
    ``source`` (the chapter's path, 'chapters/bert.md'), the notebook's metadata names it
    and says how the notebook is made (:func:`generated_metadata`), and the notebook starts
    with the :func:`install_cell` (``install`` says otherwise).
    """
    cells, region, ids = [], None, _CellIds()
    if install is None:
        install = source is not None  # a notebook of the book, not a test's fragment
    if install:
        cells.append(install_cell(framework))
    numbers = _region_numbers(items, chapter_number)
    for item in items:
        # every code item counts, so ids agree between the frameworks' notebooks
        cell_id = ids.next_code() if item.kind == 'code' else None
        if framework not in item.frameworks():
            continue
        tags = []
        if item.region:
            kind, label = item.region
            if kind == 'solution':
                tags.append(SOLUTION_TAG)
            if item.region != region:
                heading = f'**{REGION_TITLES[kind]} {numbers[label]}**'
                if kind == 'solution':
                    heading += SOLUTION_NOTICE
                cells.append(
                    nbformat.v4.new_markdown_cell(
                        heading, id=ids.next_prose(), metadata={'tags': list(tags)} if tags else {}
                    )
                )
        region = item.region
        if item.kind == 'markdown':
            text = markup.to_notebook_markdown(item.text, known_labels)
            cell = nbformat.v4.new_markdown_cell(text, id=ids.next_prose())
        else:
            tags.extend(item.tags)
            cell = nbformat.v4.new_code_cell(item.text, id=cell_id)
        if tags:
            cell.metadata['tags'] = tags
        if SOLUTION_TAG in tags:
            cell.metadata['jupyter'] = dict(COLLAPSED)
        cells.append(cell)
    nb = _new_notebook(cells)
    if source:
        nb.metadata[BOOK_METADATA] = generated_metadata(source)
    return nb


def student_copy(nb):
    """The notebook without its solution cells (outputs of the rest are kept)."""
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if SOLUTION_TAG not in c.metadata.get('tags', [])]
    return nb


def code_signature(nb):
    """What the stored outputs depend on: the code cells' sources and tags, in order."""
    return [
        (cell.source, tuple(cell.metadata.get('tags', ())))
        for cell in nb.cells
        if cell.cell_type == 'code'
    ]


def with_outputs_of(expected, stored):
    """``expected`` with the outputs of ``stored``, or None when its code differs.

    A prose-only change keeps every output: the stored notebook's code cells are carried,
    in order, onto the skeleton that the sources give now, with the record of what they ran
    against (:data:`EXECUTED_WITH`).
    """
    if (
        stored is None
        or code_signature(stored) != code_signature(expected)
        or stored.metadata.get('kernelspec') != expected.metadata.get('kernelspec')
    ):
        return None
    nb = copy.deepcopy(expected)
    if 'language_info' in stored.metadata:  # what the kernel reported when it ran
        nb.metadata.language_info = stored.metadata.language_info
    if (digests := executed_with(stored)) is not None:
        record_executed_with(nb, digests)
    stored_code = (c for c in stored.cells if c.cell_type == 'code')
    for cell in nb.cells:
        if cell.cell_type == 'code':
            old = next(stored_code)
            cell.outputs, cell.execution_count = old.outputs, old.execution_count
    return nb


def is_executed(nb):
    return all(c.execution_count is not None for c in nb.cells if c.cell_type == 'code')


def _prose_tab_set(tab_items, known_labels):
    """Framework-only prose as a synced tab set; a framework without prose gets a short
    note, so that choosing it hides the other framework's prose."""
    texts = {item.tab: markup.to_myst(item.text, known_labels) for item in tab_items}
    lines = ['::::{tab-set}', ':sync-group: framework', '']
    for fw in FRAMEWORKS:
        text = texts.get(fw) or (
            '（この部分は '
            + '・'.join(TITLES[t] for t in texts)
            + ' 版のコードについての説明です。）'
        )
        lines += [f':::{{tab-item}} {TITLES[fw]}', f':sync: {fw}', '', text, ':::', '']
    lines.append('::::')
    return '\n'.join(lines)


def _region_start(kind, label):
    if kind == 'exercise':
        return f'```{{exercise-start}}\n:label: {label}\n```'
    return f'```{{solution-start}} {label}\n:label: sol-{label}\n:class: dropdown\n```'


def tabbed_notebook(items, name, executed, known_labels, student=False, framework=None):
    """The book page of a chapter: every code cell of both frameworks, in source order.

    ``executed`` maps each framework to its executed notebook; each code cell keeps that
    framework's outputs and is marked ``metadata.tab`` for the framework-tabs extension.
    With ``framework`` (the PDF of one framework), the page holds only that framework's
    code cells and prose, without tabs and without the download line.
    """
    executed_cells = {fw: {c.get('id'): c for c in nb.cells} for fw, nb in executed.items()}
    cells, region, pending_tabs, ids = [], None, [], _CellIds()

    def add_markdown(text):
        cells.append(nbformat.v4.new_markdown_cell(text, id=ids.next_prose()))

    def flush_tabs():
        if pending_tabs:
            add_markdown(_prose_tab_set(pending_tabs, known_labels))
            pending_tabs.clear()

    for index, item in enumerate(items):
        cell_id = ids.next_code() if item.kind == 'code' else None
        if student and item.region and item.region[0] == 'solution':
            continue
        if framework and framework not in item.frameworks():
            continue
        if item.region != region:
            flush_tabs()
            if region:
                add_markdown(f'```{{{region[0]}-end}}\n```')
            if item.region:
                add_markdown(_region_start(*item.region))
            region = item.region
        if item.kind == 'markdown' and item.tab and not framework:
            pending_tabs.append(item)
            continue
        flush_tabs()
        if item.kind == 'markdown':
            add_markdown(markup.to_myst(item.text, known_labels))
            if index == 0 and not framework:
                add_markdown(_download_line(name))
            continue
        for fw in item.frameworks():
            if framework and fw != framework:
                continue
            source_cell = executed_cells[fw].get(cell_id)
            if source_cell is None or source_cell.source != item.text:
                raise ValueError(
                    f'{name}: the {fw} notebook is out of date at cell '
                    f'{cell_id}; run `python -m booktools sync`'
                )
            cell = copy.deepcopy(source_cell)
            cell.id = f'{cell_id}-{fw}'
            if not framework:
                cell.metadata[TAB_METADATA_KEY] = fw
            cells.append(cell)
    flush_tabs()
    if region:
        add_markdown(f'```{{{region[0]}-end}}\n```')
    return _new_notebook(cells)


def download_name(name, framework):
    """The file name a reader's browser saves: one per framework, so the second download
    does not become `name (1).ipynb`."""
    return f'{name}-{framework}.ipynb'


#: beside the tabbed pages: the copies of the notebooks that the pages offer for download
DOWNLOADS = 'downloads'


def _download_line(name):
    links = '・'.join(
        f'{{download}}`{TITLES[fw]} 版 <{DOWNLOADS}/{download_name(name, fw)}>`'
        for fw in FRAMEWORKS
    )
    return (
        f'この節のノートブックをダウンロードして JupyterLab で実行できます: {links}'
        '（リポジトリの外では、最初のセルが必要なライブラリをインストールします。'
        '{doc}`表紙ページ <../index>` を参照）'
    )
