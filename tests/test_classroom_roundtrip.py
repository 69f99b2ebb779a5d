"""nbgrader's whole round trip, as a class on a JupyterHub goes through it, with nbgrader's
default file exchange in temporary folders: the teacher releases an assignment, two students
fetch it, one submits the teacher's answers and the other the release untouched, the teacher
collects, autogrades, generates and releases the feedback, and both students fetch theirs.

Each step is the `nbgrader` command a teacher or a student types, in a subprocess with its own
HOME (so its own ~/.jupyter and nbgrader's submission cache) and a timeout. After each step,
every file a student can read (the home folder, with the fetched assignment and its feedback,
and the exchange's released assignment and feedback) is searched for the course's solutions,
hidden tests and model answers.

nbgrader names the student who submits after the operating system's user (`pwd`), or after
$JUPYTERHUB_USER when that user is `jovyan`, as in the Jupyter Docker Stacks images that hubs
spawn. Here both students are one user, so their `submit` and `fetch_feedback` pass `--student`.
"""

import functools
import html
import json
import os
import pathlib
import re
import signal
import subprocess
import sys

import nbformat
import pytest
import test_classroom  # the course and its secrets, as tests/test_classroom.py builds them

from booktools import classroom

pytestmark = [
    pytest.mark.classroom,
    pytest.mark.filterwarnings('ignore:Object of type:sqlalchemy.exc.SAWarning'),
]

course = test_classroom.course  # the course that `python -m booktools classroom DIR` builds

CHAPTER, FRAMEWORK = 'bert', 'pytorch'  # the quickest assignment: seconds, no data set
ASSIGNMENT = classroom.assignment_id(CHAPTER, FRAMEWORK)
STUDENTS = ('alice', 'bob')  # alice submits the teacher's answers, bob the untouched release
ANSWERED, UNTOUCHED = STUDENTS
OWN_PROSE = '自分の言葉で書いた答え（教員が採点します）'
COMMAND_TIMEOUT = 300  # seconds for one nbgrader command (autograding both takes about 15)
BIN = str(pathlib.Path(sys.executable).parent)  # nbgrader, and the alembic it runs
MARKERS = ('BEGIN SOLUTION', 'END SOLUTION', 'BEGIN HIDDEN TESTS', 'END HIDDEN TESTS')
ANSI = re.compile(r'\x1b\[[0-9;]*m')


def _environment(home):
    """A user's environment: their HOME, no Jupyter or XDG folder of whoever runs the tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(('JUPYTER', 'XDG_'))}
    env['HOME'] = str(home)
    env['PATH'] = BIN + os.pathsep + os.environ['PATH']
    return env


def _nbgrader(home, cwd, *args):
    """Run `nbgrader ARGS` as the user with this HOME, in cwd, and check that it succeeded."""
    proc = subprocess.Popen(
        ['nbgrader', *args],
        cwd=cwd,
        env=_environment(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a timeout ends its process group; a kernel exits with nbgrader
    )
    try:
        log, _ = proc.communicate(timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f'nbgrader {" ".join(args)} took more than {COMMAND_TIMEOUT} s')
    assert proc.returncode == 0, f'nbgrader {" ".join(args)} failed:\n{log}'


def _strings(value):
    """Every string in a notebook's JSON; a list of strings (a cell's lines) also as one."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        if value and all(isinstance(v, str) for v in value):
            yield ''.join(value)
        for v in value:
            yield from _strings(v)


def _normal(text):
    """Text without white space or Markdown's marks, so that rendered Markdown still matches."""
    return re.sub(r'[\s`*$\\]', '', text)


def _readable(path):
    """A file's text as a student could read it: as is, a notebook's strings, a page's text."""
    raw = path.read_bytes().decode('utf-8', errors='replace')
    texts = [raw]
    if path.suffix == '.ipynb':
        texts += _strings(json.loads(raw))
    elif path.suffix == '.html':
        texts.append(html.unescape(re.sub(r'<[^>]*>', '', raw)))
    return '\n'.join(_normal(ANSI.sub('', t)) for t in texts)


@functools.cache
def _hits(path, size, mtime_ns, wanted):
    """The wanted (kind, line, normal) in one version of a file (each is read once)."""
    text = _readable(pathlib.Path(path))
    return [(kind, line) for kind, line, normal in wanted if normal in text]


def _found(folders, secrets, allowed=()):
    """[(file, kind, line)] of the secrets (or markers) in any file under the folders."""
    allowed = {_normal(line) for line in allowed}
    wanted = tuple(
        [
            (kind, line, _normal(line))
            for kind, lines in secrets.items()
            for line in lines
            if _normal(line) not in allowed
        ]
        + [('marker', marker, _normal(marker)) for marker in MARKERS]
    )
    found = []
    for folder in folders:
        for path in sorted(p for p in pathlib.Path(folder).rglob('*') if p.is_file()):
            stat = path.stat()
            hits = _hits(str(path), stat.st_size, stat.st_mtime_ns, wanted)
            found += [(str(path), kind, line) for kind, line in hits]
    return found


def _answer(notebook, source_notebook):
    """Fill a fetched notebook in with the teacher's answers, as a student types them: the code
    of the solution cells without nbgrader's delimiters, and prose of one's own. Returns the
    lines the student wrote."""
    source = nbformat.read(source_notebook, as_version=4)
    answers = {
        cell.id: '\n'.join(
            line
            for line in cell.source.splitlines()
            if line.strip() not in ('### BEGIN SOLUTION', '### END SOLUTION')
        )
        for cell in source.cells
        if cell.metadata.get('nbgrader', {}).get('solution')
    }
    nb = nbformat.read(notebook, as_version=4)
    written = []
    for cell in nb.cells:
        if cell.id in answers:
            cell.source = answers[cell.id] if cell.cell_type == 'code' else OWN_PROSE
            written += [line.strip() for line in cell.source.splitlines() if line.strip()]
    assert written, f'{notebook}: no answer cell'
    nbformat.write(nb, notebook)
    return written


@pytest.fixture(scope='module')
def secrets():
    items = classroom.load_course_chapters()[CHAPTER][1]
    found = test_classroom._secret_lines(item for item in items if FRAMEWORK in item.frameworks())
    assert all(found.values()), found
    return found


@pytest.fixture(scope='module')
def round_trip(course, secrets, tmp_path_factory):
    """Run the round trip; {'steps': [(step, [(file, kind, line) a student could read])],
    'root': the hub's folder, 'homes': {user: HOME}, 'exchange': its folder}."""
    root = tmp_path_factory.mktemp('hub')
    exchange = root / 'exchange'  # the hub's exchange: made by its administrator, open to all
    exchange.mkdir()
    exchange.chmod(0o777)
    homes = {who: root / who for who in ('teacher', *STUDENTS)}
    for home in homes.values():
        # what the hub's /etc/jupyter/nbgrader_config.py tells every user
        (home / '.jupyter').mkdir(parents=True)
        (home / '.jupyter' / 'nbgrader_config.py').write_text(
            f'c = get_config()  # noqa: F821\nc.Exchange.root = {str(exchange)!r}\n',
            encoding='utf-8',
        )
    course_in_exchange = exchange / classroom.COURSE_ID
    allowed = {student: [] for student in STUDENTS}

    def leaks():
        found = []
        for student in STUDENTS:
            found += _found([homes[student]], secrets, allowed[student])
        found += _found([course_in_exchange / 'outbound'], secrets)
        # each file there is one student's feedback, named by a hash of that submission's secret
        own_answers = [line for lines in allowed.values() for line in lines]
        found += _found([course_in_exchange / 'feedback'], secrets, own_answers)
        return found

    steps = [('before', leaks())]

    def step(name, who, cwd, *args):
        _nbgrader(homes[who], cwd, *args)
        steps.append((name, leaks()))

    course_id = ['--course', classroom.COURSE_ID]
    step('teacher: release_assignment', 'teacher', course, 'release_assignment', ASSIGNMENT)
    for student in STUDENTS:
        step(
            f'{student}: fetch_assignment',
            student,
            homes[student],
            'fetch_assignment',
            ASSIGNMENT,
            *course_id,
        )
    notebook = homes[ANSWERED] / ASSIGNMENT / f'{ASSIGNMENT}.ipynb'
    allowed[ANSWERED] = _answer(notebook, course / 'source' / ASSIGNMENT / f'{ASSIGNMENT}.ipynb')
    steps.append((f"{ANSWERED}: writes the teacher's answers", leaks()))
    for student in STUDENTS:
        step(
            f'{student}: submit',
            student,
            homes[student],
            'submit',
            ASSIGNMENT,
            *course_id,
            '--student',
            student,
        )
    for command in ('collect', 'autograde', 'generate_feedback', 'release_feedback'):
        step(f'teacher: {command}', 'teacher', course, command, ASSIGNMENT)
    for student in STUDENTS:
        step(
            f'{student}: fetch_feedback',
            student,
            homes[student],
            'fetch_feedback',
            ASSIGNMENT,
            *course_id,
            '--student',
            student,
        )
    return {'steps': steps, 'root': root, 'homes': homes, 'exchange': exchange}


def _grades(course, student):
    """From the gradebook: {grade_id: (cell type, score, max_score)}, the grade ids that wait
    for the teacher, and the submission's (score, max_score)."""
    from nbgrader.api import Gradebook

    with Gradebook(classroom.api(course).coursedir.db_url, classroom.COURSE_ID) as gradebook:
        submission = gradebook.find_submission(ASSIGNMENT, student)
        graded = gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student)
        cells = {
            grade.name: (grade.cell.cell_type, grade.score, grade.max_score)
            for grade in graded.grades
        }
        manual = {grade.name for grade in graded.grades if grade.needs_manual_grade}
        return cells, manual, (submission.score, submission.max_score)


def test_the_teachers_answers_get_full_marks_and_the_untouched_release_zero(course, round_trip):
    tests = test_classroom._test_cells(
        nbformat.read(course / 'source' / ASSIGNMENT / f'{ASSIGNMENT}.ipynb', as_version=4)
    )
    answered, answered_manual, (answered_score, max_score) = _grades(course, ANSWERED)
    untouched, untouched_manual, (untouched_score, _) = _grades(course, UNTOUCHED)
    assert {g for g, (kind, _, _) in answered.items() if kind == 'code'} == set(tests)
    for grade_id, (kind, score, max_points) in answered.items():
        if kind == 'code':  # every test, visible and hidden, passes: full marks
            assert score == max_points == tests[grade_id], f'{grade_id}: {score} of {max_points}'
    # alice's own prose waits for the teacher; bob's untouched answers are 0 without grading
    assert answered_manual == {g for g, (kind, _, _) in answered.items() if kind == 'markdown'}
    assert answered_score == sum(tests.values()) and max_score > answered_score
    assert set(untouched) == set(answered) and not untouched_manual
    assert untouched_score == 0
    assert all(score == 0 and max_points > 0 for _, score, max_points in untouched.values())


def test_no_solution_or_hidden_test_reaches_a_student_at_any_step(round_trip):
    names = [name for name, _ in round_trip['steps']]
    assert names[-1] == f'{UNTOUCHED}: fetch_feedback' and len(names) == 13, names
    leaked = [
        f'{name}: {os.path.relpath(path, round_trip["root"])}: {kind} {line!r}'
        for name, found in round_trip['steps']
        for path, kind, line in found
    ]
    assert not leaked, '\n'.join(leaked)


def test_both_students_fetch_their_own_feedback(course, round_trip):
    for student in STUDENTS:
        feedback = sorted((round_trip['homes'][student] / ASSIGNMENT / 'feedback').rglob('*'))
        pages = [p for p in feedback if p.is_file()]
        assert [p.name for p in pages] == [f'{ASSIGNMENT}.html'], feedback
        text = html.unescape(re.sub(r'<[^>]*>', '', pages[0].read_text(encoding='utf-8')))
        _, _, (score, max_score) = _grades(course, student)
        assert f'{ASSIGNMENT} (Score: {score:.1f} / {max_score:.1f})' in text, student
        # the test cells are there, their errors as one line, without the hidden tests' lines
        assert 'Grade cell: ' in text
        if student == UNTOUCHED:
            assert "NameError: name 'short' is not defined" in text
            assert 'Traceback (most recent call last)' in text  # the answer cells' tracebacks
    assert len(list((round_trip['exchange'] / classroom.COURSE_ID / 'feedback').iterdir())) == 2


def test_the_search_finds_what_it_looks_for(course, round_trip, secrets, tmp_path):
    """The search reads notebooks and HTML pages: the teacher's own files show every secret."""
    from nbconvert import HTMLExporter

    source = course / 'source' / ASSIGNMENT / f'{ASSIGNMENT}.ipynb'
    page = tmp_path / 'source.html'
    page.write_text(HTMLExporter().from_filename(str(source))[0], encoding='utf-8')
    every = {(kind, line) for kind, lines in secrets.items() for line in lines}
    every |= {('marker', marker) for marker in MARKERS}
    for path in (source, page):
        assert {(kind, line) for _, kind, line in _found([path.parent], secrets)} >= every, path
    # nbgrader's own feedback would show the hidden tests: the autograded notebook holds them
    autograded = course / 'autograded' / UNTOUCHED / ASSIGNMENT
    hidden = {line for _, kind, line in _found([autograded], secrets) if kind == 'hidden test'}
    assert hidden == set(secrets['hidden test'])
