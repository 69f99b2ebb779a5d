"""The nbgrader course (`make classroom`): built from the chapters' grading markup, released
by nbgrader without solutions or hidden tests, and graded by nbgrader as the teacher expects.

The tests marked `classroom` build the course and execute its notebooks (about a minute per
framework); the rest are fast checks of the markup.
"""

import datetime
import re

import nbformat
import pytest

from booktools import __main__ as cli
from booktools import book, classroom, source
from booktools.frameworks import FRAMEWORKS
from booktools.paths import notebook_path

# nbgrader 0.9.6's gradebook warns about its own SQLAlchemy session use on every autograde
pytestmark = pytest.mark.filterwarnings('ignore:Object of type:sqlalchemy.exc.SAWarning')

MARKED = """\
# T
:label:`sec_t`

:begin_exercise:`ex_t`
Compute it.

```{.python .input}
#@tab all
#@setup
base = 40
```
:end_exercise:

:begin_solution:`ex_t`
:answer:`3`
Because forty-two is forty plus two, which is the only sensible answer.

```{.python .input}
#@tab all
#@answer
### BEGIN SOLUTION
answer = base + 2
### END SOLUTION
print(answer)
```

```{.python .input}
#@tab all
#@test points=2
assert isinstance(answer, int)
### BEGIN HIDDEN TESTS
assert answer == 42
### END HIDDEN TESTS
```
:end_solution:
"""


def test_the_book_sees_no_course_only_block_and_no_delimiter():
    items = source.parse(MARKED)
    code = [item for item in items if item.kind == 'code']
    assert [item.text for item in code] == ['answer = base + 2\nprint(answer)']
    prose = [
        item for item in items if item.region == ('solution', 'ex_t') and item.kind == 'markdown'
    ]
    assert prose[0].text.startswith('Because') and ':answer:' not in prose[0].text


def test_the_course_sees_setup_answers_and_tests_with_points():
    items = source.parse(MARKED, course=True)
    kinds = [(item.kind, item.grading.kind, item.grading.points) for item in items if item.grading]
    assert kinds == [
        ('code', 'setup', 0),
        ('markdown', 'answer', 3),
        ('code', 'answer', 0),
        ('code', 'test', 2),
    ]
    answer = next(
        item
        for item in items
        if item.grading and item.grading.kind == 'answer' and item.kind == 'code'
    )
    assert '### BEGIN SOLUTION' in answer.grading.text
    assert '### BEGIN SOLUTION' not in answer.text


def test_assignment_cells_carry_nbgrader_metadata():
    nb = classroom.assignment_notebook('t', source.parse(MARKED, course=True), 'pytorch', {})
    meta = {cell.id: cell.metadata.get('nbgrader') for cell in nb.cells}
    assert meta['setup-1'] == {
        'grade': False,
        'grade_id': 'setup-1',
        'locked': True,
        'schema_version': 3,
        'solution': False,
    }
    assert meta['ex_t-answer-1']['solution'] and not meta['ex_t-answer-1']['grade']
    assert meta['ex_t-test-1']['points'] == 2 and meta['ex_t-test-1']['locked']
    assert meta['ex_t-prose-1']['points'] == 3 and meta['ex_t-prose-1']['solution']
    ids = [cell.id for cell in nb.cells]
    assert ids.index('ex_t-answer-1') < ids.index('ex_t-test-1') < ids.index('ex_t-prose-1')


@pytest.mark.parametrize(
    'bad, message',
    [
        ('```{.python .input}\n#@test points=2\nx\n```', 'inside a :begin_solution:'),
        (
            ':begin_exercise:`e`\n```{.python .input}\n#@answer\nx\n```\n:end_exercise:',
            'inside a :begin_solution:',
        ),
        (
            ':begin_solution:`e`\n```{.python .input}\n#@setup\nx\n```\n:end_solution:',
            'inside a :begin_exercise:',
        ),
        (
            ':begin_solution:`e`\n```{.python .input}\n#@answer\nx = 1\n```\n:end_solution:',
            'BEGIN SOLUTION',
        ),
        (':begin_solution:`e`\n```{.python .input}\n#@test 2\nx\n```\n:end_solution:', 'points=N'),
        (':answer:`2`\ntext', 'inside a :begin_solution:'),
    ],
)
def test_misplaced_grading_markup_is_one_clear_error(bad, message):
    with pytest.raises(source.SourceError, match=re.escape(message)):
        source.parse(bad)


def test_book_notebooks_hold_no_grading_markup():
    for name in book.chapter_names():
        for fw in FRAMEWORKS:
            text = notebook_path(name, fw).read_text(encoding='utf-8')
            for marker in (
                '### BEGIN SOLUTION',
                'HIDDEN TESTS',
                '#@test',
                '#@setup',
                '#@answer',
                ':answer:',
            ):
                assert marker not in text, f'{marker} in {name} ({fw})'


def test_every_chapter_has_autograded_and_manual_cells():
    for name, (_, items) in classroom.load_course_chapters().items():
        kinds = {(item.kind, item.grading.kind) for item in items if item.grading}
        assert {
            ('code', 'setup'),
            ('code', 'answer'),
            ('code', 'test'),
            ('markdown', 'answer'),
        } <= kinds, name


# --- the course itself, built and graded by nbgrader (tier `classroom`) ---


SECRET_KINDS = ('solution', 'hidden test', 'model answer')


def _secret_lines(items):
    """Lines a student must not see, by kind: solution code, hidden tests, model prose answers."""
    secrets = {kind: [] for kind in SECRET_KINDS}
    for item in items:
        if not item.grading:
            continue
        if item.grading.kind == 'answer' and item.kind == 'markdown':
            secrets['model answer'] += [
                line.strip() for line in item.grading.text.splitlines() if len(line.strip()) > 25
            ][:2]
        for kind, begin, end in (
            ('solution', '### BEGIN SOLUTION', '### END SOLUTION'),
            ('hidden test', '### BEGIN HIDDEN TESTS', '### END HIDDEN TESTS'),
        ):
            inside = False
            for line in item.grading.text.splitlines():
                if line.strip() in (begin, end):
                    inside = line.strip() == begin
                elif inside and line.strip():
                    secrets[kind].append(line.strip())
    return secrets


def _secrets(items):
    """Lines a student must not see: solution code, hidden tests, model prose answers."""
    return [line for lines in _secret_lines(items).values() for line in lines]


@pytest.fixture(scope='module')
def course(tmp_path_factory):
    target = tmp_path_factory.mktemp('classroom') / 'course'
    assert cli.main(['classroom', str(target)]) == 0  # the command `make classroom` runs
    return target


@pytest.fixture(scope='module')
def assignments(course):
    return sorted(p.name for p in (course / 'source').iterdir())


@pytest.fixture(scope='module')
def teacher_grades(course, assignments):
    return {
        a: classroom.autograde(course, a, 'teacher', course / 'source' / a / f'{a}.ipynb')
        for a in assignments
    }


def _sources(path):
    return '\n'.join(cell.source for cell in nbformat.read(path, as_version=4).cells)


def _test_cells(nb):
    return {
        c.metadata.nbgrader['grade_id']: c.metadata.nbgrader['points']
        for c in nb.cells
        if c.cell_type == 'code' and c.metadata.get('nbgrader', {}).get('grade')
    }


@pytest.mark.classroom
def test_generate_assignment_succeeds_for_every_assignment(course, assignments):
    assert assignments == sorted(
        classroom.assignment_id(name, fw) for name in book.chapter_names() for fw in FRAMEWORKS
    )
    for a in assignments:
        released = nbformat.read(course / 'release' / a / f'{a}.ipynb', as_version=4)
        assert _test_cells(released), a
        assert (course / 'release' / a / 'd2l_extras' / 'torch.py').exists()


@pytest.mark.classroom
def test_release_holds_no_solution_and_no_hidden_test(course):
    for name, (_, items) in classroom.load_course_chapters().items():
        for fw in FRAMEWORKS:
            secrets = _secrets(item for item in items if fw in item.frameworks())
            assert secrets, f'{name}: no solution or hidden-test line to look for'
            a = classroom.assignment_id(name, fw)
            teacher = _sources(course / 'source' / a / f'{a}.ipynb')
            student = _sources(course / 'release' / a / f'{a}.ipynb')
            assert 'HIDDEN TESTS' in teacher and 'HIDDEN TESTS' not in student
            for line in secrets:
                assert line in teacher, f'{a}: {line!r} is not in the source notebook'
                assert line not in student, f'{a}: {line!r} is in the release'


@pytest.mark.classroom
def test_teacher_solutions_get_full_marks(course, assignments, teacher_grades):
    for a in assignments:
        expected = _test_cells(nbformat.read(course / 'source' / a / f'{a}.ipynb', 4))
        grades = teacher_grades[a]
        assert set(grades) == set(expected), a
        for grade_id, (score, max_score) in grades.items():
            assert max_score == expected[grade_id] > 0
            assert score == max_score, f'{a} {grade_id}: {score} of {max_score}'


@pytest.mark.classroom
def test_untouched_release_gets_zero(course, assignments):
    for a in assignments:
        grades = classroom.autograde(course, a, 'blank', course / 'release' / a / f'{a}.ipynb')
        assert grades, a
        for grade_id, (score, max_score) in grades.items():
            assert max_score > 0 and score == 0, f'{a} {grade_id}: {score} of {max_score}'


@pytest.mark.classroom
def test_one_wrong_answer_loses_exactly_that_cells_points(course, teacher_grades, tmp_path):
    a = classroom.assignment_id('bert-pretraining', 'pytorch')
    nb = nbformat.read(course / 'source' / a / f'{a}.ipynb', as_version=4)
    answer = next(c for c in nb.cells if c.id == 'ex_bert_pretraining_loss-answer-1')
    assert 'math.log(2)' in answer.source
    answer.source = answer.source.replace('math.log(2)', 'math.log(3)')  # wrong, plausible
    path = tmp_path / f'{a}.ipynb'
    nbformat.write(nb, path)
    grades = classroom.autograde(course, a, 'wrong', path)
    lost = {g: teacher_grades[a][g][0] - score for g, (score, _) in grades.items()}
    assert lost == {
        g: (2.0 if g == 'ex_bert_pretraining_loss-test-1' else 0.0) for g in teacher_grades[a]
    }
    # and nbgrader's validation, which the solutions pass, tells the student
    assert [f['source'] for f in classroom.validate(path)['failed']] == [
        c.source.strip() for c in nb.cells if c.id == 'ex_bert_pretraining_loss-test-1'
    ]


@pytest.mark.classroom
def test_nbgrader_validate_passes_on_the_solution_notebooks(course, assignments):
    for a in assignments:
        assert classroom.validate(course / 'source' / a / f'{a}.ipynb') == {}, a


def test_autograde_gives_each_cell_the_hubs_300_seconds(tmp_path):
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute

    (tmp_path / classroom.CONFIG_FILE).write_text(classroom.CONFIG, encoding='utf-8')
    grader = classroom.api(tmp_path)  # the config, as nbgrader reads it from the course folder
    autograde = Autograde(coursedir=grader.coursedir, parent=grader)
    assert Execute in autograde.autograde_preprocessors  # the cells run in nbgrader's Execute
    assert Execute(parent=autograde).timeout == classroom.CELL_TIMEOUT == 300
    assert Execute().timeout == 30  # nbgrader's default, without the course's config


@pytest.mark.classroom
def test_no_cell_comes_near_the_cell_timeout(course, assignments, teacher_grades):
    """Autograding the solutions, the slowest cell takes seconds (a setup cell loading WikiText-2);
    a fifth of the 300 s leaves room for a slower hub, the full WikiText-2 (this corpus is its
    validation and test splits) and a class graded at once. No cell needs NBGRADER_EXECUTION."""
    times = {}
    for a in assignments:
        nb = nbformat.read(course / 'autograded' / 'teacher' / a / f'{a}.ipynb', as_version=4)
        for cell in nb.cells:
            if cell.cell_type == 'code':
                run = cell.metadata['execution']  # nbclient's timing, kept by autograde
                start, end = run['iopub.execute_input'], run['shell.execute_reply']
                times[f'{a} {cell.id}'] = (
                    datetime.datetime.fromisoformat(end) - datetime.datetime.fromisoformat(start)
                ).total_seconds()
    slowest = max(times, key=times.get)
    assert times[slowest] < classroom.CELL_TIMEOUT / 5, f'{slowest}: {times[slowest]:.0f} s'
