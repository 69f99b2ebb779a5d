"""Where the book's files are."""

import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The data the tests and the stored outputs need, carried by the repository (with licences)
DATA_DIR = ROOT / 'data'
# The source chapter that `make bench` compares with: ../shared unless BOOK_SHARED_DIR says
# otherwise; nothing but the benchmark needs it
SHARED_DIR = pathlib.Path(os.environ.get('BOOK_SHARED_DIR', ROOT.parent / 'shared'))
BUILD_DIR = ROOT / '_build'
OFFLINE_CORPUS_DIR = BUILD_DIR / 'wikitext-2-offline'
TABBED = 'tabbed'  # chapters/tabbed/<name>.ipynb: the book pages, generated, not committed


def chapter_source(name, root=ROOT):
    return root / 'chapters' / f'{name}.md'


def notebook_path(name, framework, root=ROOT):
    return root / 'chapters' / framework / f'{name}.ipynb'


def tabbed_path(name, root=ROOT):
    return root / 'chapters' / TABBED / f'{name}.ipynb'
