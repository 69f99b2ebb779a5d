"""The course's PyTorch assignments where a hub runs them (tier `compat`): `make compat` runs
these in a Python 3.13 venv installed as docs/teaching.md says (requirements-torch.txt, then
`pip install --no-deps d2l==1.0.3`, no MXNet). nbgrader builds the course, autogrades the
teacher's notebooks (full marks) and the untouched releases (zero), and validates the
teacher's notebooks. tests/test_classroom.py does the same for both frameworks on 3.11."""

import os
import pathlib
import sys
from importlib import metadata

import nbformat
import pytest

from booktools import classroom, corpus

pytestmark = [
    pytest.mark.compat,
    # nbgrader 0.9.6's gradebook warns about its own SQLAlchemy session use on every autograde
    pytest.mark.filterwarnings('ignore:Object of type:sqlalchemy.exc.SAWarning'),
]
FRAMEWORK = 'pytorch'


@pytest.fixture(scope='module')
def course(tmp_path_factory):
    target = tmp_path_factory.mktemp('compat') / 'course'
    classroom.build(target)  # what `make classroom` runs (its command line also imports Sphinx)
    return target


@pytest.fixture(scope='module')
def assignments(course):
    found = sorted(p.name for p in (course / 'source').iterdir() if p.name.endswith(FRAMEWORK))
    assert found, 'no PyTorch assignment in the course'
    return found


def _test_cells(path):
    nb = nbformat.read(path, as_version=4)
    return {
        c.metadata.nbgrader['grade_id']: c.metadata.nbgrader['points']
        for c in nb.cells
        if c.cell_type == 'code' and c.metadata.get('nbgrader', {}).get('grade')
    }


def test_the_venv_holds_the_documented_install():
    """torch and d2l as requirements-torch.txt and the --no-deps step give them."""
    print(f'Python {sys.version.split()[0]}, NumPy {metadata.version("numpy")}')
    assert metadata.version('torch').split('+')[0] == '2.14.1'
    assert metadata.version('d2l') == '1.0.3'


def test_the_kernel_spec_gives_every_kernel_the_shared_wikitext2(tmp_path):
    """`make compat` sets D2L_WIKITEXT2_DIR in the python3 kernel spec, as docs/teaching.md
    tells a teacher (`python -m ipykernel install --sys-prefix --env ...`): every kernel gets
    it, whatever the environment of the process that starts the kernel says."""
    import nbclient
    from jupyter_client.kernelspec import get_kernel_spec

    shared = get_kernel_spec('python3').env.get(corpus.DIR_ENV)
    if not shared:
        pytest.skip(f'the python3 kernel spec sets no {corpus.DIR_ENV} (`make compat` sets it)')
    assert shared != os.environ.get(corpus.DIR_ENV)  # tests/conftest.py set another one
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(f'import os; print(os.environ[{corpus.DIR_ENV!r}])')]
    )
    nbclient.NotebookClient(nb, timeout=60, kernel_name='python3').execute(cwd=tmp_path)
    assert nb.cells[0].outputs[0].text.strip() == shared
    assert (pathlib.Path(shared) / 'wiki.train.tokens').is_file()


def test_teacher_notebooks_get_full_marks(course, assignments):
    for a in assignments:
        expected = _test_cells(course / 'source' / a / f'{a}.ipynb')
        grades = classroom.autograde(course, a, 'teacher', course / 'source' / a / f'{a}.ipynb')
        assert set(grades) == set(expected), a
        for grade_id, (score, max_score) in grades.items():
            assert max_score == expected[grade_id] > 0, f'{a} {grade_id}'
            assert score == max_score, f'{a} {grade_id}: {score} of {max_score}'


def test_untouched_releases_get_zero(course, assignments):
    for a in assignments:
        grades = classroom.autograde(course, a, 'blank', course / 'release' / a / f'{a}.ipynb')
        assert grades, a
        for grade_id, (score, max_score) in grades.items():
            assert max_score > 0 and score == 0, f'{a} {grade_id}: {score} of {max_score}'


def test_teacher_notebooks_pass_nbgrader_validate(course, assignments):
    for a in assignments:
        assert classroom.validate(course / 'source' / a / f'{a}.ipynb') == {}, a
