"""Executing a notebook cell by cell in a fresh kernel, and what the run printed."""

import copy
import dataclasses
import json
import os
import pathlib
import re
import shutil
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from booktools.corpus import corpus_environment
from booktools.paths import ROOT

from . import BENCH_DIR
from .inputs import (
    BENCH_TAG,
    data_cell,
    data_prep_only,
    log,
    ours_notebook,
    reference_notebook,
    with_steps,
)

RUNS_DIR = BENCH_DIR / 'runs'
RESULT_MARKER = 'BENCH_RESULT '
#: papermill's tag on the cell it injects; like the benchmark's own cells, not chapter time
INJECTED_TAG = 'injected-parameters'
LOSS_PATTERN = re.compile(r'MLM loss ([0-9.]+|nan|inf), NSP loss ([0-9.]+|nan|inf)')
THROUGHPUT_PATTERN = re.compile(r'([0-9.]+) sentence pairs/sec on (.*)')
ANSI_ESCAPE = re.compile(r'\x1b\[[0-9;]*m')


@dataclasses.dataclass
class Run:
    label: str
    cells: list  # [{'index', 'first_line', 'seconds', ...}] for each executed code cell
    total_seconds: float  # chapter cells only (without the bench's own cells)
    data_prep_seconds: float = None
    train_seconds: float = None
    throughput: float = None
    devices: str = None
    mlm_loss: float = None
    nsp_loss: float = None
    peak_rss_mib: float = None
    children_peak_rss_mib: float = None
    vocab_size: int = None
    num_batches: int = None
    error: str = None
    finished_at: str = None
    steps: int = None  # training steps of the run (None: data preparation only)
    reused: bool = False  # taken from an earlier run's saved JSON (--reuse-reference)


def is_bench_cell(cell):
    return bool({BENCH_TAG, INJECTED_TAG} & set(cell.metadata.get('tags', [])))


def result_cell():
    """Cell appended to every run: peak memory of the kernel and a few sizes, as one JSON line."""
    return nbformat.v4.new_code_cell(
        'import json as _bench_json, resource as _bench_resource\n'
        '_bench_result = {\n'
        "    'ru_maxrss_kib': _bench_resource.getrusage(_bench_resource.RUSAGE_SELF).ru_maxrss,\n"
        "    'children_ru_maxrss_kib': _bench_resource.getrusage(\n"
        '        _bench_resource.RUSAGE_CHILDREN).ru_maxrss,\n'
        '}\n'
        '# vocab and train_iter are missing when the notebook failed before load_data_wiki\n'
        'try:\n'
        "    _bench_result['vocab_size'] = len(vocab)\n"
        "    _bench_result['num_batches'] = len(train_iter)\n"
        'except Exception:\n'
        '    pass\n'
        f'print({RESULT_MARKER!r} + _bench_json.dumps(_bench_result))',
        metadata={'tags': [BENCH_TAG]},
    )


def cell_text(cell):
    """Everything a cell printed (streams and text results)."""
    parts = []
    for output in cell.get('outputs', []):
        if output.get('output_type') == 'stream':
            parts.append(output.get('text', ''))
        elif output.get('output_type') in ('execute_result', 'display_data'):
            parts.append(output.get('data', {}).get('text/plain', ''))
        elif output.get('output_type') == 'error':
            parts.append('\n'.join(output.get('traceback', [])))
    return '\n'.join(parts)


def kernel_peak_rss_mib(client):
    """Peak resident memory so far (VmHWM) of the kernel process, read from /proc; or None."""
    try:
        pid = client.km.provisioner.pid
        for line in pathlib.Path(f'/proc/{pid}/status').read_text().splitlines():
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024
    except (AttributeError, OSError, ValueError, TypeError):
        pass
    return None


def execute(label, notebook, env_changes, timeout, steps):
    """Run `notebook` cell by cell in a fresh kernel; time each cell; parse the results."""
    work_dir = RUNS_DIR / label
    if work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    env.update(env_changes)
    notebook = copy.deepcopy(notebook)
    notebook.cells.append(result_cell())
    # nbclient, not papermill's engine: after a failure the bench's own cells still run
    # (peak memory), and each cell's peak RSS is read between cells
    client = NotebookClient(
        notebook,
        kernel_name='python3',
        timeout=timeout,
        resources={'metadata': {'path': str(work_dir)}},
    )
    cells, error = [], None
    log(f'{label}: executing {len(notebook.cells)} cells in a fresh kernel (cwd {work_dir})')
    with client.setup_kernel(env=env):
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != 'code' or (error and not is_bench_cell(cell)):
                continue
            start = time.perf_counter()
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as exc:
                message = ANSI_ESCAPE.sub('', str(exc)).strip().splitlines()[-1]
                error = error or f'cell {index} failed: {message}'
            except (CellTimeoutError, DeadKernelError) as exc:  # the kernel is of no more use
                error = error or f'cell {index}: {type(exc).__name__}: {exc}'.strip()[:300]
                break
            seconds = time.perf_counter() - start
            first_line = next(
                (
                    line
                    for line in cell.source.splitlines()
                    if line.strip() and not line.startswith('#@')
                ),
                '',
            )
            cells.append(
                {
                    'index': index,
                    'first_line': first_line[:60],
                    'seconds': seconds,
                    'bench_cell': is_bench_cell(cell),
                    'peak_rss_mib': kernel_peak_rss_mib(client),
                }
            )
    nbformat.write(notebook, work_dir / f'{label}.ipynb')  # executed copy, for inspection
    run = Run(
        label=label,
        cells=cells,
        error=error,
        total_seconds=sum(c['seconds'] for c in cells if not c['bench_cell']),
        finished_at=time.strftime('%Y-%m-%d %H:%M:%S'),
        steps=steps,
    )
    parse_run(run, notebook)
    if error:
        log(f'{label}: ERROR {error} (executed copy: {work_dir / (label + ".ipynb")})')
    print_cell_times(run)
    (RUNS_DIR / f'{label}.json').write_text(json.dumps(dataclasses.asdict(run), indent=1))
    return run


def parse_run(run, notebook):
    """Fill in `run` from the executed notebook: data preparation, training printout, memory."""
    executed = {c['index']: c['seconds'] for c in run.cells}
    run.data_prep_seconds = executed.get(data_cell(notebook))
    for index, cell in enumerate(notebook.cells):
        text = cell_text(cell) if cell.cell_type == 'code' else ''
        if RESULT_MARKER in text:
            line = text[text.index(RESULT_MARKER) + len(RESULT_MARKER) :].splitlines()[0]
            result = json.loads(line)
            run.peak_rss_mib = result['ru_maxrss_kib'] / 1024
            run.children_peak_rss_mib = result['children_ru_maxrss_kib'] / 1024
            run.vocab_size = result.get('vocab_size')
            run.num_batches = result.get('num_batches')
        loss = LOSS_PATTERN.search(text)
        throughput = THROUGHPUT_PATTERN.search(text)
        if loss and throughput:
            run.mlm_loss, run.nsp_loss = float(loss.group(1)), float(loss.group(2))
            run.throughput, run.devices = float(throughput.group(1)), throughput.group(2).strip()
            run.train_seconds = executed.get(index)


def print_cell_times(run):
    log(
        f'{run.label}: wall time per cell (s), kernel peak RSS after it (MiB); '
        '* = added by the bench'
    )
    for cell in run.cells:
        mark = '*' if cell['bench_cell'] else ' '
        rss = cell.get('peak_rss_mib')
        rss = f'{rss:7.0f}' if rss is not None else '      ?'
        print(f'    {cell["seconds"]:8.2f} {rss} {mark} [{cell["index"]:2d}] {cell["first_line"]}')
    print(f'    {run.total_seconds:8.2f}   total (chapter cells)', flush=True)


def _prepared(notebook, steps, data_only):
    return data_prep_only(notebook) if data_only else with_steps(notebook, steps)


def _device_environment(gpu):
    return {} if gpu else {'CUDA_VISIBLE_DEVICES': ''}


def run_reference(framework, corpus_dir, site, steps, timeout, gpu, data_only=False, tag=''):
    notebook = _prepared(reference_notebook(framework, corpus_dir, site), steps, data_only)
    env = {'PYTHONPATH': str(site), **_device_environment(gpu)}
    return execute(
        f'reference-{framework}{tag}',
        notebook,
        env,
        timeout=timeout,
        steps=None if data_only else steps,
    )


def run_ours(framework, corpus_dir, steps, timeout, gpu, data_only=False, tag=''):
    notebook = _prepared(ours_notebook(framework), steps, data_only)
    env = {'PYTHONPATH': str(ROOT), **corpus_environment(corpus_dir), **_device_environment(gpu)}
    return execute(
        f'ours-{framework}{tag}', notebook, env, timeout=timeout, steps=None if data_only else steps
    )


def load_saved_run(label):
    """The run saved under `label` by an earlier benchmark, marked as reused; or None."""
    path = RUNS_DIR / f'{label}.json'
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    fields = {field.name for field in dataclasses.fields(Run)} - {'reused'}
    return Run(**{key: value for key, value in saved.items() if key in fields}, reused=True)
