"""The book's files and the one-way flow between them:

chapters/<name>.md  ->  chapters/{mxnet,pytorch}/<name>.ipynb  +  d2l_extras/{mxnet,torch}.py
                    ->  (executed in place)  ->  chapters/tabbed/<name>.ipynb  ->  HTML

:func:`plan` says what the sources produce; ``sync`` applies it and ``check`` reports it.
An executed notebook records what its outputs ran against (:func:`executed_with`); when
that changes, the notebook is stale although its own code is not.
"""

import dataclasses
import json
import shutil

import nbformat
import yaml

from . import library, notebooks, source
from .frameworks import FRAMEWORKS, LIBRARY_MODULES
from .paths import ROOT, TABBED, chapter_source, notebook_path, tabbed_path

#: the chapters' figures (SVG); pages and notebooks name them ../figures/<file>
FIGURES = 'chapters/figures'


def chapter_names(root=ROOT):
    """Chapter names in book order, read from the table of contents."""
    toc = yaml.safe_load((root / '_toc.yml').read_text(encoding='utf-8'))
    names = []

    def walk(node):
        if isinstance(node, dict):
            file = node.get('file', node.get('root'))
            if file and file.startswith(f'chapters/{TABBED}/'):
                names.append(file.rsplit('/', 1)[1].removesuffix('.ipynb'))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(toc)
    return names


def read_notebook(path):
    return nbformat.read(path, as_version=4)


def notebook_text(nb):
    """A notebook as it is stored on disk."""
    return nbformat.writes(nb) + '\n'


def write_if_changed(path, text):
    """Write ``text`` unless the file already holds it (keeps timestamps for make)."""
    if not (path.exists() and path.read_text(encoding='utf-8') == text):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding='utf-8')


def write_notebook(nb, path):
    write_if_changed(path, notebook_text(nb))


def load_chapters(root=ROOT):
    """Parse every chapter: {name: (label, items)}, in book order."""
    chapters = {}
    for name in chapter_names(root):
        path = chapter_source(name, root)
        items = source.parse(path.read_text(encoding='utf-8'), name=str(path))
        chapter_label = next(iter(source.labels(items)), None)
        if chapter_label is None:
            raise source.SourceError(f'{path}: the title needs a :label: line under it')
        chapters[name] = (chapter_label, items)
    return chapters


def label_index(chapters):
    """label -> (notebook file name, title), across all chapters."""
    index = {}
    for name, (_, items) in chapters.items():
        for label, heading in source.labels(items).items():
            index[label] = (f'{name}.ipynb', heading)
    return index


def library_path(framework, root=ROOT):
    return root / 'd2l_extras' / f'{LIBRARY_MODULES[framework]}.py'


def executed_with(nb, package):
    """What the outputs of ``nb`` come from: a digest of its code cells (sources and tags,
    as :func:`notebooks.code_signature`) and one of each ``d2l_extras`` module that they
    import or launch, directly or through other modules (``package``, a
    :class:`library.Package`). A module's digest leaves out its comments, docstrings and
    layout, so a prose edit changes nothing here."""
    cells = json.dumps(notebooks.code_signature(nb), ensure_ascii=False)
    code = [cell.source for cell in nb.cells if cell.cell_type == 'code']
    return {'code cells': library.digest(cells), **package.used_by(code)}


def _what_changed(recorded, now):
    """Why outputs that ran against ``recorded`` are stale now, or '' when they are not."""
    if recorded is None:
        return 'its outputs do not record the code they ran against'
    if recorded == now:
        return ''
    changed = [key for key in now if key in recorded and recorded[key] != now[key]]
    added = [key for key in now if key not in recorded]
    dropped = [key for key in recorded if key not in now]
    return '; '.join(
        f'{what} {", ".join(keys)}'
        for what, keys in (
            ('the code changed in', changed),
            ('it now also uses', added),
            ('it no longer uses', dropped),
        )
        if keys
    )


@dataclasses.dataclass
class Planned:
    """One generated file: what the sources make of it, and how the file on disk stands.

    ``state`` is 'current' (the file holds ``text``), 'update' (write ``text``; outputs, if
    any, are kept), 'stale' (its code changed: ``text`` has no outputs and must be
    executed), 'unexecuted' (the file holds ``text`` but has code cells never run) or
    'outdated' (``text`` keeps the outputs, but the code they ran against has changed since,
    as ``reason`` says: it must be executed again; ``written`` says whether the file already
    holds ``text``).
    """

    path: object
    text: str
    state: str
    written: bool = True
    reason: str = ''

    def problem(self):
        rel = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return {
            'update': f'{rel} does not match its sources (run `make sync`)',
            'stale': f'{rel}: its code changed, so it must be executed again '
            '(run `make notebooks`)',
            'unexecuted': f'{rel} has code cells that were never executed (run `make notebooks`)',
            'outdated': f'{rel} is stale: {self.reason} (run `make notebooks`)',
        }.get(self.state)


#: the states of a notebook that ``execute --stale`` runs
NEEDS_EXECUTION = ('stale', 'unexecuted', 'outdated')


def _planned(path, text, needs_execution=False):
    on_disk = path.read_text(encoding='utf-8') if path.exists() else None
    if on_disk != text:
        return Planned(path, text, 'stale' if needs_execution else 'update', written=False)
    return Planned(path, text, 'unexecuted' if needs_execution else 'current')


def _planned_notebook(path, nb, package):
    entry = _planned(path, notebook_text(nb), needs_execution=not notebooks.is_executed(nb))
    if entry.state in ('current', 'update'):  # executed: but against the code of today?
        entry.reason = _what_changed(notebooks.executed_with(nb), executed_with(nb, package))
        if entry.reason:
            entry.state = 'outdated'
    return entry


def plan(root=ROOT, chapters=None):
    """Every committed generated file with the content its sources give it now.

    A notebook whose code cells (sources, tags, order) are unchanged keeps its outputs,
    whatever happened to its prose; one whose code changed is planned without outputs.
    One whose outputs ran against other ``d2l_extras`` code than the sources give now is
    'outdated' (:func:`executed_with`).
    """
    chapters = chapters or load_chapters(root)
    index = label_index(chapters)
    sources = [(f'chapters/{name}.md', label, items) for name, (label, items) in chapters.items()]
    modules = {fw: library.module_text(fw, sources) for fw in FRAMEWORKS}
    # the notebooks run against the library modules as the sources make them now
    package = library.Package(root, {LIBRARY_MODULES[fw]: text for fw, text in modules.items()})
    entries = []
    for number, (name, (_, items)) in enumerate(chapters.items(), start=1):
        for fw in FRAMEWORKS:
            path = notebook_path(name, fw, root)
            # exercises numbered as in the HTML book: chapter.section.n
            expected = notebooks.framework_notebook(
                items, fw, index, chapter_number=number, source=f'chapters/{name}.md'
            )
            stored = read_notebook(path) if path.exists() else None
            kept = notebooks.with_outputs_of(expected, stored)
            entries.append(_planned_notebook(path, kept or expected, package))
    for fw in FRAMEWORKS:
        entries.append(_planned(library_path(fw, root), modules[fw]))
    return entries


def sync(root=ROOT):
    """Write what the plan says; return the notebooks that need executing."""
    entries = plan(root)
    for entry in entries:
        if not entry.written:
            write_if_changed(entry.path, entry.text)
    return [e.path for e in entries if e.state in NEEDS_EXECUTION]


def out_of_sync(root=ROOT):
    """Human-readable reasons why committed files differ from what the sources produce."""
    return [e.problem() for e in plan(root) if e.state != 'current']


def assemble_tabbed(chapters, root=ROOT, student=False, notebook_root=None):
    """The tabbed page of every chapter, from the executed per-framework notebooks."""
    index = label_index(chapters)
    notebook_root = notebook_root or root
    pages = {}
    for name, (_, items) in chapters.items():
        executed = {fw: read_notebook(notebook_path(name, fw, notebook_root)) for fw in FRAMEWORKS}
        pages[name] = notebooks.tabbed_notebook(items, name, executed, index, student)
    return pages


def write_pages(root=ROOT, student=False, notebook_root=None, target=None):
    """Write the tabbed book pages (generated for each build, never committed)."""
    chapters = load_chapters(root)
    for name, nb in assemble_tabbed(chapters, root, student, notebook_root).items():
        page = tabbed_path(name, target or root)
        write_notebook(nb, page)
        for fw in FRAMEWORKS:
            # the {download} role keeps a file's name: a copy named after its framework
            download = page.parent / notebooks.DOWNLOADS / notebooks.download_name(name, fw)
            write_if_changed(
                download, notebook_path(name, fw, notebook_root or root).read_text(encoding='utf-8')
            )


def copy_figures(root, target):
    """Copy the chapters' figures into a book tree: its pages show them as ../figures/<name>."""
    if (root / FIGURES).is_dir():
        shutil.copytree(root / FIGURES, target / FIGURES)


def student_tree(target, root=ROOT):
    """Copy the book's sources into ``target`` without any solution.

    The students' book is built from that tree, so no solution can reach its HTML, its
    search index or its notebooks.
    """
    if target.exists():
        shutil.rmtree(target)
    (target / 'chapters').mkdir(parents=True)
    for name in ('_config.yml', '_toc.yml'):
        shutil.copy2(root / name, target / name)
    for path in (root / 'chapters').iterdir():
        if path.is_file() and (path.suffix != '.md' or path.name == 'index.md'):
            shutil.copy2(path, target / 'chapters' / path.name)
    copy_figures(root, target)
    for name in chapter_names(root):
        for fw in FRAMEWORKS:
            nb = notebooks.student_copy(read_notebook(notebook_path(name, fw, root)))
            write_notebook(nb, notebook_path(name, fw, target))
    write_pages(root, student=True, notebook_root=target, target=target)
    return target
