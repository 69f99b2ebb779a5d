"""The students' book (`make book-student`) carries no solution anywhere: not in its HTML,
its search index, its page sources or its downloadable notebooks.

Every solution carries a marker: its label `sol-<exercise label>` in the HTML, and its own
text and code. The teacher's book must contain them (so this test can fail), the students'
book must not.
"""

import pathlib

import pytest

from booktools import book

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEACHER = ROOT / '_build' / 'html'
STUDENT = ROOT / '_build' / 'student' / 'html'
STUDENT_SOURCES = ROOT / '_build' / 'student-src'


def _solutions():
    """(label, distinctive lines) for every solution of every chapter."""
    found = {}
    for _, items in book.load_chapters().values():
        # a line found in the chapter outside its solutions (the exercise's code stub, the
        # model's settings) marks no solution
        shown = '\n'.join(
            item.text for item in items if not (item.region and item.region[0] == 'solution')
        )
        for item in items:
            if item.region and item.region[0] == 'solution':
                lines = [
                    line.strip()
                    for line in item.text.splitlines()
                    if len(line.strip()) > 25
                    and not line.startswith(('#', '$'))
                    and line.strip() not in shown
                ]
                found.setdefault(item.region[1], []).extend(lines[:2])
    return found


def _texts(folder):
    """Every text file a reader can reach: HTML, search index, sources, notebooks."""
    for path in folder.rglob('*'):
        if path.suffix in {'.html', '.js', '.txt', '.ipynb', '.md'} and path.is_file():
            yield path, path.read_text(encoding='utf-8', errors='replace')


def _built(folder):
    if not (folder / 'index.html').exists():
        pytest.fail(f'{folder} is missing: run `make book` and `make book-student` first')
    return list(_texts(folder))


def test_every_chapter_has_solutions():
    assert len(_solutions()) >= 6  # at least two exercises in each of the three chapters


@pytest.mark.book
def test_teacher_book_contains_every_solution_marker():
    texts = _built(TEACHER)
    html = '\n'.join(text for path, text in texts if path.suffix == '.html')
    for label in _solutions():
        assert f'sol-{label}' in html, label


@pytest.mark.book
def test_student_book_contains_no_solution():
    texts = _built(STUDENT) + list(_texts(STUDENT_SOURCES / 'chapters'))
    assert any(path.name == 'searchindex.js' for path, _ in texts)
    assert any(path.suffix == '.ipynb' for path, _ in texts)
    for label, lines in _solutions().items():
        for path, text in texts:
            assert f'sol-{label}' not in text, f'solution {label} leaks into {path}'
            for line in lines:
                assert line not in text, f'solution {label} leaks into {path}: {line!r}'


@pytest.mark.book
def test_student_book_keeps_the_exercises():
    html = '\n'.join(text for path, text in _built(STUDENT) if path.suffix == '.html')
    for label in _solutions():
        assert f'id="{label}"' in html or f'id="{label.replace("_", "-")}"' in html, label
