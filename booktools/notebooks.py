"""Build notebooks from parsed chapter items: one plain notebook per framework (for JupyterLab
and nbval), and one tabbed notebook per chapter for the HTML book.

Cells get stable ids from the item they come from, so the tabbed notebook can take each
code cell's outputs from the executed per-framework notebook.
"""
import copy

import nbformat

from . import markup
from .source import FRAMEWORKS

FRAMEWORK_TITLES = {'mxnet': 'MXNet', 'pytorch': 'PyTorch'}
KERNELSPEC = {'name': 'python3', 'display_name': 'Python 3 (ipykernel)',
              'language': 'python'}
SOLUTION_TAG = 'solution'
REGION_TITLES = {'exercise': '演習', 'solution': '解答'}


def _new_notebook(cells):
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {'kernelspec': dict(KERNELSPEC), 'language_info': {'name': 'python'}}
    return nb


def _region_numbers(items):
    """Number the exercises of a chapter; a solution gets its exercise's number."""
    numbers = {}
    for item in items:
        if item.region and item.region[0] == 'exercise':
            numbers.setdefault(item.region[1], len(numbers) + 1)
    return numbers


def _cell_id(index, framework=None):
    return f'c{index:03d}' + (f'-{framework}' if framework else '')


def framework_notebook(items, framework, known_labels):
    """The notebook of one framework, unexecuted.

    ``known_labels`` maps a label to (notebook file name, title) for cross-references.
    Solution cells carry the tag ``solution`` so a student copy can drop them.
    """
    cells, numbers, region = [], _region_numbers(items), None
    for index, item in enumerate(items):
        if framework not in item.frameworks():
            continue
        tags = []
        if item.region:
            kind, label = item.region
            if kind == 'solution':
                tags.append(SOLUTION_TAG)
            if item.region != region:
                heading = f'**{REGION_TITLES[kind]} {numbers[label]}**'
                cells.append(nbformat.v4.new_markdown_cell(
                    heading, id=_cell_id(index, 'region'),
                    metadata={'tags': list(tags)} if tags else {}))
        region = item.region
        if item.kind == 'markdown':
            text = markup.to_notebook_markdown(item.text, known_labels)
            cell = nbformat.v4.new_markdown_cell(text, id=_cell_id(index))
        else:
            if item.check_output:
                tags.append('nbval-check-output')
            cell = nbformat.v4.new_code_cell(item.text, id=_cell_id(index))
        if tags:
            cell.metadata['tags'] = tags
        cells.append(cell)
    return _new_notebook(cells)


def student_copy(nb):
    """The notebook without its solution cells (outputs of the rest are kept)."""
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if SOLUTION_TAG not in c.metadata.get('tags', [])]
    return nb


def skeleton(nb):
    """What a notebook's source determines: cells without outputs or execution counts."""
    cells = []
    for cell in nb.cells:
        cells.append({'id': cell.get('id'), 'cell_type': cell.cell_type,
                      'source': cell.source, 'metadata': dict(cell.metadata)})
    return {'kernelspec': nb.metadata.get('kernelspec'), 'cells': cells}


def _prose_tab_set(tab_items, known_labels):
    """Framework-only prose as a synced tab set; a framework without prose gets a short
    note, so that choosing it hides the other framework's prose."""
    texts = {item.tab: markup.to_myst(item.text, known_labels) for item in tab_items}
    lines = ['::::{tab-set}', ':sync-group: framework', '']
    for fw in FRAMEWORKS:
        text = texts.get(fw) or ('（この部分は '
                                 + '・'.join(FRAMEWORK_TITLES[t] for t in texts)
                                 + ' 版のコードについての説明です。）')
        lines += [f':::{{tab-item}} {FRAMEWORK_TITLES[fw]}', f':sync: {fw}', '', text, ':::', '']
    lines.append('::::')
    return '\n'.join(lines)


def _region_start(kind, label):
    if kind == 'exercise':
        return f'```{{exercise-start}}\n:label: {label}\n```'
    return f'```{{solution-start}} {label}\n:label: sol-{label}\n:class: dropdown\n```'


def tabbed_notebook(items, name, executed, known_labels, student=False):
    """The book page of a chapter: every code cell of both frameworks, in spec order.

    ``executed`` maps each framework to its executed notebook; each code cell keeps that
    framework's outputs and is marked ``metadata.tab`` for the framework-tabs extension.
    """
    executed_cells = {fw: {c.get('id'): c for c in executed[fw].cells} for fw in FRAMEWORKS}
    cells, region, pending_tabs = [], None, []

    def flush_tabs():
        if pending_tabs:
            cells.append(nbformat.v4.new_markdown_cell(
                _prose_tab_set(pending_tabs, known_labels),
                id=_cell_id(items.index(pending_tabs[0]), 'tabs')))
            pending_tabs.clear()

    for index, item in enumerate(items):
        if student and item.region and item.region[0] == 'solution':
            continue
        if item.region != region:
            flush_tabs()
            if region:
                cells.append(nbformat.v4.new_markdown_cell(
                    f'```{{{region[0]}-end}}\n```', id=_cell_id(index, 'end')))
            if item.region:
                cells.append(nbformat.v4.new_markdown_cell(
                    _region_start(*item.region), id=_cell_id(index, 'start')))
            region = item.region
        if item.kind == 'markdown' and item.tab:
            pending_tabs.append(item)
            continue
        flush_tabs()
        if item.kind == 'markdown':
            cells.append(nbformat.v4.new_markdown_cell(
                markup.to_myst(item.text, known_labels), id=_cell_id(index)))
            if index == 0:
                cells.append(nbformat.v4.new_markdown_cell(_download_line(name),
                                                           id='downloads'))
            continue
        for fw in item.frameworks():
            source_cell = executed_cells[fw].get(_cell_id(index))
            if source_cell is None or source_cell.source != item.text:
                raise ValueError(f'{name}: the {fw} notebook is out of date at cell '
                                 f'{_cell_id(index)}; run `python -m booktools sync`')
            cell = copy.deepcopy(source_cell)
            cell.id = _cell_id(index, fw)
            cell.metadata['tab'] = fw
            cells.append(cell)
    flush_tabs()
    if region:
        cells.append(nbformat.v4.new_markdown_cell(f'```{{{region[0]}-end}}\n```',
                                                   id='last-end'))
    return _new_notebook(cells)


def _download_line(name):
    links = '・'.join(f'{{download}}`{FRAMEWORK_TITLES[fw]} 版 <../{fw}/{name}.ipynb>`'
                     for fw in FRAMEWORKS)
    return f'この節のノートブックをダウンロードして JupyterLab で実行できます: {links}'
