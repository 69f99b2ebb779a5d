"""The book's files and the one-way flow between them:

chapters/<name>.md  ->  chapters/{mxnet,pytorch}/<name>.ipynb  +  d2l_extras/{mxnet,torch}.py
                    ->  (executed in place)  ->  chapters/tabbed/<name>.ipynb  ->  HTML
"""
import os
import pathlib
import shutil

import nbformat
import yaml

from . import library, notebooks, source
from .source import FRAMEWORKS

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The shared, read-only inputs (spec, WikiText-2 splits): ../shared unless BOOK_SHARED_DIR says
# otherwise (a machine that gets only the repository, such as a lent GPU machine)
SHARED_DIR = pathlib.Path(os.environ.get('BOOK_SHARED_DIR', ROOT.parent / 'shared'))
CHAPTERS = ROOT / 'chapters'
EXTRAS = ROOT / 'd2l_extras'
TABBED = 'tabbed'


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


def notebook_path(name, framework, root=ROOT):
    return root / 'chapters' / framework / f'{name}.ipynb'


def tabbed_path(name, root=ROOT):
    return root / 'chapters' / TABBED / f'{name}.ipynb'


def read_notebook(path):
    return nbformat.read(path, as_version=4)


def notebook_text(nb):
    """A notebook as it is stored on disk."""
    return nbformat.writes(nb) + '\n'


def is_current(path, text):
    return path.exists() and path.read_text(encoding='utf-8') == text


def write_if_changed(path, text):
    """Write ``text`` unless the file already holds it (keeps timestamps for make)."""
    if not is_current(path, text):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding='utf-8')


def write_notebook(nb, path):
    write_if_changed(path, notebook_text(nb))


def load_chapters(root=ROOT):
    """Parse every chapter: {name: (label, items)}, in book order."""
    chapters = {}
    for name in chapter_names(root):
        path = root / 'chapters' / f'{name}.md'
        items = source.parse(path.read_text(encoding='utf-8'), name=str(path))
        labels = source.labels(items)
        chapter_label = next(iter(labels), None)
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


def expected_framework_notebooks(chapters):
    index = label_index(chapters)
    return {(name, fw): notebooks.framework_notebook(items, fw, index)
            for name, (_, items) in chapters.items() for fw in FRAMEWORKS}


def expected_library(chapters):
    return {fw: library.module_text(fw, list(chapters.values())) for fw in FRAMEWORKS}


def library_path(framework, root=ROOT):
    return root / 'd2l_extras' / f'{library.MODULE_OF_FRAMEWORK[framework]}.py'


def assemble_tabbed(chapters, root=ROOT, student=False, notebook_root=None):
    """The tabbed page of every chapter, from the executed per-framework notebooks."""
    index = label_index(chapters)
    notebook_root = notebook_root or root
    pages = {}
    for name, (_, items) in chapters.items():
        executed = {fw: read_notebook(notebook_path(name, fw, notebook_root))
                    for fw in FRAMEWORKS}
        pages[name] = notebooks.tabbed_notebook(items, name, executed, index, student)
    return pages


def sync(root=ROOT):
    """Regenerate notebooks and d2l_extras from the chapter sources.

    A per-framework notebook whose cells already match its source keeps its outputs; one
    whose source changed is rewritten without outputs and must be executed again.
    Returns the notebooks that need executing.
    """
    chapters = load_chapters(root)
    stale = []
    for (name, fw), nb in expected_framework_notebooks(chapters).items():
        path = notebook_path(name, fw, root)
        current = read_notebook(path) if path.exists() else None
        if current is None or notebooks.skeleton(current) != notebooks.skeleton(nb):
            write_notebook(nb, path)
            stale.append(path)
        elif not is_executed(current):
            stale.append(path)
    for fw, text in expected_library(chapters).items():
        write_if_changed(library_path(fw, root), text)
    if not stale:
        write_tabbed(chapters, root)
    return stale


def write_tabbed(chapters, root=ROOT):
    for name, nb in assemble_tabbed(chapters, root).items():
        write_notebook(nb, tabbed_path(name, root))


def is_executed(nb):
    return all(c.execution_count is not None for c in nb.cells if c.cell_type == 'code')


def out_of_sync(root=ROOT):
    """Human-readable reasons why committed files differ from what the sources produce."""
    chapters = load_chapters(root)
    problems = []
    for (name, fw), nb in expected_framework_notebooks(chapters).items():
        path = notebook_path(name, fw, root)
        current = read_notebook(path) if path.exists() else None
        if current is None:
            problems.append(f'{path} is missing')
        elif notebooks.skeleton(current) != notebooks.skeleton(nb):
            problems.append(f'{path} does not match chapters/{name}.md')
        elif not is_executed(current):
            problems.append(f'{path} has code cells that were never executed')
    for fw, text in expected_library(chapters).items():
        path = library_path(fw, root)
        if not is_current(path, text):
            problems.append(f'{path} does not match the #@save blocks of the chapters')
    if not problems:
        for name, nb in assemble_tabbed(chapters, root).items():
            path = tabbed_path(name, root)
            if not is_current(path, notebook_text(nb)):
                problems.append(f'{path} does not match its executed notebooks')
    return problems


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
    for name in chapter_names(root):
        for fw in FRAMEWORKS:
            nb = notebooks.student_copy(read_notebook(notebook_path(name, fw, root)))
            write_notebook(nb, notebook_path(name, fw, target))
    chapters = load_chapters(root)
    for name, nb in assemble_tabbed(chapters, root, student=True,
                                    notebook_root=target).items():
        write_notebook(nb, tabbed_path(name, target))
    return target


def offline_corpus(target, shared_data):
    """A WikiText-2 directory made of the real validation and test splits.

    It is NOT the official training split: ``wiki.train.tokens`` is the validation and test
    text concatenated, so that tests and CI run without the internet.
    """
    target = pathlib.Path(target)
    shared_data = pathlib.Path(shared_data)
    parts = [shared_data / 'wiki.valid.tokens', shared_data / 'wiki.test.tokens']
    missing = [str(p) for p in parts if not p.exists()]
    if missing:
        raise FileNotFoundError(f'offline corpus files missing: {", ".join(missing)}; '
                                'put ../shared/data/wikitext-2 beside the repository')
    train = target / 'wiki.train.tokens'
    if not train.exists():
        target.mkdir(parents=True, exist_ok=True)
        tmp = train.with_suffix('.tmp')
        tmp.write_bytes(b''.join(p.read_bytes() for p in parts))
        for p in parts:
            shutil.copy2(p, target / p.name)
        os.replace(tmp, train)
    return target
