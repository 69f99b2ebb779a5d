"""A notebook as the HTML book offers it, run where the repository is not (tier `wheel`,
after `make book`): the chapter page's PyTorch download and the front page's wheel are copied
into an empty folder, a fresh venv gets only a kernel and nbclient, and the notebook runs there.
Its own first cell installs the wheel and d2l (booktools.notebooks.install_cell), with the
commands the front page shows; nothing of the repository is on the kernel's path."""

import html
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import nbformat
import pytest

from booktools import notebooks
from booktools.paths import ROOT

pytestmark = pytest.mark.wheel

SITE = pathlib.Path(os.environ.get('BOOK_HTML_DIR', ROOT / '_build' / 'html'))
CHAPTER, FRAMEWORK = 'bert', 'pytorch'
# a pip install of torch with its CUDA libraries (about 3 GB from the local wheel cache), then
# the chapter: minutes
INSTALL_TIMEOUT = 900
RUN_TIMEOUT = 1800
# the environment variables that could point the fresh venv back into the repository
LEAKS = ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV', 'D2L_WIKITEXT2_DIR', 'JUPYTER_PATH')

PROBE = """\
import json, sys, d2l_extras, d2l
print(json.dumps({'path': sys.path, 'executable': sys.executable,
                  'd2l_extras': d2l_extras.__file__, 'd2l': d2l.__file__}))
"""

RUNNER = """\
import sys, nbclient, nbformat
nb = nbformat.read(sys.argv[1], as_version=4)
nbclient.NotebookClient(nb, timeout={timeout}, kernel_name='python3', record_timing=False,
                        resources={{'metadata': {{'path': '.'}}}}).execute()
nbformat.write(nb, sys.argv[2])
"""


def _offered(page, suffix):
    """The file that ``page`` links for download, whose name ends with ``suffix``."""
    if not page.is_file():
        pytest.skip(f'the HTML book is not built ({page}); run `make book`')
    hrefs = [
        html.unescape(h)
        for h in re.findall(
            r'<a [^>]*class="[^"]*download[^"]*"[^>]*href="([^"]+)"', page.read_text()
        )
    ]
    found = [h for h in hrefs if h.endswith('/' + suffix)]
    assert len(found) == 1, f'{page.relative_to(SITE)}: download links {hrefs}'
    path = (page.parent / found[0]).resolve()
    assert path.is_file() and path.is_relative_to(SITE.resolve()), path
    return path


def _run(args, timeout, **kwargs):
    start = time.perf_counter()
    result = subprocess.run(
        ['nice', '-n', '19', *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
    assert result.returncode == 0, f'{args}:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}'
    return time.perf_counter() - start


def test_a_downloaded_notebook_installs_the_wheel_and_runs_without_the_repository(tmp_path):
    notebook = _offered(
        SITE / 'chapters' / 'tabbed' / f'{CHAPTER}.html',
        notebooks.download_name(CHAPTER, FRAMEWORK),
    )
    wheel = _offered(SITE / 'chapters' / 'index.html', notebooks.wheel_name())
    work = tmp_path / 'downloads'  # what a reader's folder holds: the two downloads
    work.mkdir()
    shutil.copy2(notebook, work / notebook.name)
    shutil.copy2(wheel, work / wheel.name)
    nb = nbformat.read(work / notebook.name, as_version=4)
    assert nb.cells[0].id == notebooks.INSTALL_CELL
    nb.cells.append(nbformat.v4.new_code_cell(PROBE, id='probe'))
    nbformat.write(nb, work / 'probed.ipynb')

    env = {k: v for k, v in os.environ.items() if k not in LEAKS}
    venv = tmp_path / 'venv'
    python = venv / 'bin' / 'python'
    env['PATH'] = f'{venv / "bin"}{os.pathsep}{env["PATH"]}'
    times = {}
    # the interpreter the repository's venv was made from, without that venv
    times['venv'] = _run([sys._base_executable, '-m', 'venv', venv], 120, env=env, cwd=work)
    times['kernel'] = _run(
        [python, '-m', 'pip', 'install', '-q', 'ipykernel', 'nbclient', 'nbformat'],
        INSTALL_TIMEOUT,
        env=env,
        cwd=work,
    )
    (work / 'run.py').write_text(RUNNER.format(timeout=INSTALL_TIMEOUT), encoding='utf-8')
    times['notebook'] = _run(
        [python, 'run.py', 'probed.ipynb', 'executed.ipynb'], RUN_TIMEOUT, env=env, cwd=work
    )
    print(' '.join(f'{k} {v:.0f} s' for k, v in times.items()))

    executed = nbformat.read(work / 'executed.ipynb', as_version=4)
    installed = ''.join(o.get('text', '') for o in executed.cells[0].outputs)
    assert 'Successfully installed' in installed and 'bert-book-0.1.0' in installed, installed
    probe = json.loads(executed.cells[-1].outputs[0].text)
    site = (venv / 'lib').resolve()
    assert pathlib.Path(probe['executable']).parent == venv / 'bin'
    for module in ('d2l_extras', 'd2l'):
        assert pathlib.Path(probe[module]).resolve().is_relative_to(site), probe
    inside = [p for p in probe['path'] if p and pathlib.Path(p).resolve().is_relative_to(ROOT)]
    assert not inside, f'the kernel has the repository on its path: {inside}'
    errors = [o for c in executed.cells if c.cell_type == 'code' for o in c.outputs]
    assert not [o for o in errors if o.output_type == 'error']
    shutil.rmtree(venv)  # torch with its CUDA libraries: 6 GB (kept when the test fails)
