"""The book's exercises as an nbgrader course: one assignment per chapter and framework.

The course is made from the chapter sources, like the book (grading markup in
:mod:`booktools.source`). An assignment holds the chapter's exercises only, not the chapter:

- the ``#@setup`` cells (locked) build, through ``d2l_extras``, what the exercises use, in a
  few seconds (the data set and vocabulary, an untrained model); nothing is trained;
- each exercise's statement, then its ``#@answer`` cells (nbgrader solution cells, the
  exercise's code stub left out), its ``#@test`` cells (locked, with points; hidden checks
  between nbgrader's ``### BEGIN HIDDEN TESTS`` lines) and its ``:answer:`` prose (a manually
  graded answer cell whose model answer is the solution's prose);
- solution code without ``#@answer`` (demonstrations that need the trained model) stays in the
  book only.

``source/`` is written here; ``release/`` comes from nbgrader itself
(``generate_assignment``), and so does grading (``autograde``, ``validate``) through its
Python API, with the course's ``nbgrader_config.py`` and its sqlite gradebook. That config
gives a cell 300 s while autograding (as MCJ-CloudHub), and makes ``generate_feedback`` leave out
the hidden tests, which nbgrader's own feedback shows (see ``CONFIG``).
"""

import os
import pathlib
import shutil
import sys

import nbformat

from . import book, markup, notebooks, source
from .frameworks import FRAMEWORKS, TITLES
from .paths import BUILD_DIR, ROOT, chapter_source

COURSE_DIR = BUILD_DIR / 'classroom'
COURSE_ID = 'bert-book'
CONFIG_FILE = 'nbgrader_config.py'
# seconds for one cell while autograding: what NII's MCJ-CloudHub gives (the solutions' slowest
# cell, a setup cell, takes seconds; tests/test_classroom.py keeps them far below it)
CELL_TIMEOUT = 300
CONFIG = f"""\
# nbgrader settings of the course that `make classroom` builds (read by the nbgrader commands
# run in this folder, by the formgrader, and by booktools.classroom).
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = '{COURSE_ID}'
c.CourseDirectory.root = __file__.rsplit('/', 1)[0]
# the gradebook: gradebook.db in this folder (nbgrader's default)
c.CourseDirectory.db_url = 'sqlite:///' + c.CourseDirectory.root + '/gradebook.db'
# the time one cell may take while autograding, as on MCJ-CloudHub; a cell that hangs fails
# instead of stalling the grading (nbgrader's own default is 30 s)
c.Execute.timeout = {CELL_TIMEOUT}
"""
# The feedback is the autograded notebook as HTML, where autograde has put the hidden tests back
# into the test cells, and a failing test's IPython traceback prints the lines around the failing
# one. The course's feedback shows neither: a test cell's error is its last line only (such as
# "NameError: name 'short' is not defined"). tests/test_classroom_roundtrip.py checks it.
CONFIG += """\


class FeedbackWithoutHiddenTests(ClearHiddenTests):
    \"\"\"Test cells without their hidden tests, and their errors without the traceback
    (whose lines around the failing one would show the hidden tests).\"\"\"

    def preprocess_cell(self, cell, resources, index):
        cell, resources = super().preprocess_cell(cell, resources, index)
        if cell.cell_type == 'code' and cell.metadata.get('nbgrader', {}).get('grade'):
            for output in cell.outputs:
                if output.output_type == 'error':
                    output.traceback = [output.ename + ': ' + output.evalue]
        return cell, resources


# the feedback without the hidden tests, which nbgrader's own feedback shows (autograde puts
# them back into the test cells): nbgrader's two preprocessors, and the one above between them
c.GenerateFeedback.preprocessors = [
    GetGrades,
    FeedbackWithoutHiddenTests,
    CSSHTMLHeaderPreprocessor,
]
"""
SCHEMA_VERSION = 3
INSTRUCTIONS = """\
上から順にすべてのセルを実行してください。`# YOUR CODE HERE` と `raise NotImplementedError()` の
ところにコードを書き、「YOUR ANSWER HERE」のセルには文章で答えます。編集できないテストのセルを
実行すると、答えの形などを確かめる「見えるテスト」だけが動きます。採点では、値そのものを確かめる
「隠れたテスト」も実行されます。「準備」のセル（編集不可）は、演習に必要なデータとモデルを
`d2l_extras` で用意します（学習はしません）。"""


class ClassroomError(RuntimeError):
    """nbgrader could not build or grade the course."""


def assignment_id(name, framework):
    return f'{name}-{framework}'


def _nbgrader(cell, grade_id, *, grade=False, solution=False, locked=False, points=None):
    meta = {
        'grade': grade,
        'grade_id': grade_id,
        'locked': locked,
        'schema_version': SCHEMA_VERSION,
        'solution': solution,
    }
    if points is not None:
        meta['points'] = points
    cell.metadata['nbgrader'] = meta
    return cell


def _exercise_numbers(items):
    return notebooks._region_numbers(items)  # the book's numbering, so both say 演習 N


def assignment_notebook(name, items, framework, known_labels):
    """The nbgrader source notebook (with solutions and hidden tests) of one chapter.

    ``items`` come from ``source.parse(..., course=True)``.
    """
    mine = [item for item in items if framework in item.frameworks()]
    chapter_title = next(
        item.text[2:].split('\n')[0]
        for item in items
        if item.kind == 'markdown' and item.text.startswith('# ')
    )
    cells = [
        nbformat.v4.new_markdown_cell(
            f'# 課題: {chapter_title}（{TITLES[framework]}）\n\n{INSTRUCTIONS}', id='intro'
        )
    ]
    setups = [item for item in mine if item.grading and item.grading.kind == 'setup']
    cells.append(nbformat.v4.new_markdown_cell('## 準備', id='setup-title'))
    for k, item in enumerate(setups, 1):
        cells.append(
            _nbgrader(
                nbformat.v4.new_code_cell(item.text, id=f'setup-{k}'), f'setup-{k}', locked=True
            )
        )
    numbers = _exercise_numbers(items)
    for label, number in numbers.items():
        exercise = [
            i
            for i in mine
            if i.region == ('exercise', label) and not (i.grading and i.grading.kind == 'setup')
        ]
        graded = [i for i in mine if i.region == ('solution', label) and i.grading]
        graded.sort(key=lambda i: i.kind == 'markdown')  # code and tests first, then prose
        has_answer_code = any(i.kind == 'code' and i.grading.kind == 'answer' for i in graded)
        cells.append(nbformat.v4.new_markdown_cell(f'## 演習 {number}', id=f'{label}-title'))
        for k, item in enumerate(exercise, 1):
            if item.kind == 'markdown':
                text = markup.to_notebook_markdown(item.text, known_labels)
                cells.append(nbformat.v4.new_markdown_cell(text, id=f'{label}-text-{k}'))
            elif not has_answer_code:  # a stub the answer cells replace is left out
                cells.append(nbformat.v4.new_code_cell(item.text, id=f'{label}-code-{k}'))
        counts = {}
        for item in graded:
            kind = 'prose' if item.kind == 'markdown' else item.grading.kind
            counts[kind] = counts.get(kind, 0) + 1
            grade_id = f'{label}-{kind}-{counts[kind]}'
            points = item.grading.points
            if kind == 'prose':
                cells.append(
                    nbformat.v4.new_markdown_cell(
                        f'**解答欄（文章、{points} 点、教員が採点）**', id=f'{grade_id}-prompt'
                    )
                )
                text = markup.to_notebook_markdown(item.grading.text, known_labels)
                cells.append(
                    _nbgrader(
                        nbformat.v4.new_markdown_cell(text, id=grade_id),
                        grade_id,
                        grade=True,
                        solution=True,
                        points=points,
                    )
                )
            elif kind == 'answer':
                cells.append(
                    _nbgrader(
                        nbformat.v4.new_code_cell(item.grading.text, id=grade_id),
                        grade_id,
                        solution=True,
                    )
                )
            else:
                cells.append(
                    _nbgrader(
                        nbformat.v4.new_code_cell(item.grading.text, id=grade_id),
                        grade_id,
                        grade=True,
                        locked=True,
                        points=points,
                    )
                )
    return notebooks._new_notebook(cells)


def _course_labels(chapters, framework):
    """:numref: targets in the course: the same framework's assignment of that chapter."""
    index = {}
    for name, (_, items) in chapters.items():
        a = assignment_id(name, framework)
        for label, heading in source.labels(items).items():
            index[label] = (f'../{a}/{a}.ipynb', heading)
    return index


def load_course_chapters(root=ROOT):
    """Every chapter parsed with its course-only blocks: {name: (label, items)}."""
    chapters = {}
    for name in book.chapter_names(root):
        path = chapter_source(name, root)
        items = source.parse(path.read_text(encoding='utf-8'), name=str(path), course=True)
        chapters[name] = (next(iter(source.labels(items))), items)
    return chapters


def write_source(course_dir=COURSE_DIR, root=ROOT):
    """Write ``nbgrader_config.py`` and ``source/<assignment>/``; return the assignment ids.

    Each assignment folder also gets a copy of ``d2l_extras``, so that nbgrader releases it
    with the notebook and the students' kernels import the book's code from the folder.
    """
    course_dir = pathlib.Path(course_dir)
    course_dir.mkdir(parents=True, exist_ok=True)
    (course_dir / CONFIG_FILE).write_text(CONFIG, encoding='utf-8')
    chapters = load_course_chapters(root)
    ids = []
    for framework in FRAMEWORKS:
        labels = _course_labels(chapters, framework)
        for name, (_, items) in chapters.items():
            a = assignment_id(name, framework)
            folder = course_dir / 'source' / a
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            nb = assignment_notebook(name, items, framework, labels)
            book.write_notebook(nb, folder / f'{a}.ipynb')
            shutil.copytree(
                root / 'd2l_extras',
                folder / 'd2l_extras',
                ignore=shutil.ignore_patterns('__pycache__', '*.pyc'),
            )
            ids.append(a)
    return ids


def api(course_dir=COURSE_DIR):
    """nbgrader's Python API, configured by the course's ``nbgrader_config.py``."""
    from nbgrader.apps import NbGraderAPI  # only the course commands need nbgrader
    from traitlets.config.loader import PyFileConfigLoader

    # nbgrader runs the `alembic` command for its gradebook: the one beside this Python
    bin_dir = str(pathlib.Path(sys.executable).parent)
    if bin_dir not in os.environ['PATH'].split(os.pathsep):
        os.environ['PATH'] = bin_dir + os.pathsep + os.environ['PATH']
    course_dir = pathlib.Path(course_dir).resolve()
    config = PyFileConfigLoader(CONFIG_FILE, path=str(course_dir)).load_config()
    return NbGraderAPI(config=config)


def _checked(result, what):
    if not result.get('success'):
        raise ClassroomError(
            f'nbgrader {what} failed:\n{result.get("error") or ""}\n{result.get("log") or ""}'
        )
    return result


def build(course_dir=COURSE_DIR, root=ROOT):
    """The whole course: ``source/`` from the chapters, ``release/`` by nbgrader."""
    course_dir = pathlib.Path(course_dir)
    ids = write_source(course_dir, root)
    grader = api(course_dir)
    for a in ids:
        _checked(grader.generate_assignment(a), f'generate_assignment {a}')
    return ids


def autograde(course_dir, assignment, student, notebook):
    """Submit ``notebook`` (a path) as ``student``'s, autograde it with nbgrader, and return
    ``{grade_id: (score, max_score)}`` of its autograded test cells."""
    from nbgrader.api import Gradebook

    course_dir = pathlib.Path(course_dir)
    submitted = course_dir / 'submitted' / student / assignment
    if submitted.exists():
        shutil.rmtree(submitted)
    submitted.mkdir(parents=True)
    shutil.copy2(notebook, submitted / f'{assignment}.ipynb')
    grader = api(course_dir)
    _checked(grader.autograde(assignment, student), f'autograde {assignment} {student}')
    with Gradebook(grader.coursedir.db_url) as gradebook:
        graded = gradebook.find_submission_notebook(assignment, assignment, student)
        return {
            grade.name: (grade.score, grade.max_score)
            for grade in graded.grades
            if grade.cell.cell_type == 'code'
        }


def validate(notebook):
    """nbgrader's validation of one notebook: {'failed': [...], ...} as nbgrader reports it."""
    from nbgrader.validator import Validator

    return Validator().validate(str(notebook))
