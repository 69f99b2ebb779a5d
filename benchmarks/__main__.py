"""Benchmark of the BERT pretraining chapter: our notebooks against the d2l 0.17.6 reference.

Run from the repository root:

    .venv/bin/python -m booktools.bench [--frameworks mxnet pytorch] [--steps 50] [--quick]

For each framework it executes, each in a fresh Jupyter kernel and one after the other,

* OURS: the generated notebook ``chapters/<framework>/bert-pretraining.ipynb`` (on a copy in
  memory; the file itself is never written), with ``D2L_WIKITEXT2_DIR`` pointing at the
  offline corpus;
* REFERENCE: a notebook built from the code blocks of the spec chapter
  (``../shared/spec/bert-pretraining.ja.md``), importing d2l 0.17.6 from ``_build/reference/``
  (downloaded there with pip, never installed into the venv), with ``d2l.download_extract``
  patched to return the offline corpus.

The notebooks are run cell by cell, so every cell gets its own wall time. The benchmark only
measures and prints; it judges nothing (no assertions on timings).

Offline corpus: WikiText-2 *validation + test* splits concatenated as ``wiki.train.tokens``
(``_build/bench/wikitext2/``). It is NOT the official training split; every report says so.
"""
import argparse
import copy
import dataclasses
import importlib.metadata
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import time
import zipfile

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from booktools import book

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
from booktools.paths import SHARED_DIR  # noqa: E402
BENCH_DIR = REPO_ROOT / '_build' / 'bench'
REFERENCE_DIR = REPO_ROOT / '_build' / 'reference'
REFERENCE_VERSION = '0.17.6'
FRAMEWORKS = ('mxnet', 'pytorch')
CHAPTER = 'bert-pretraining'
DEFAULT_STEPS = 50
QUICK_STEPS = 10
CORPUS_COPIES = 5  # the linearity check runs the data preparation on the corpus repeated this often

# The chapter's pretraining configuration (only used for the FLOP count; the notebooks set it).
BATCH_SIZE, MAX_LEN = 512, 64
NUM_HIDDENS, FFN_NUM_HIDDENS, NUM_HEADS, NUM_LAYERS = 128, 256, 2, 2
NUM_MLM_PREDS = round(MAX_LEN * 0.15)  # masked positions per pair, padded to this count

# Targets from the project plan; printed next to the ratios, never enforced.
TARGETS = {
    'data_prep': {'mxnet': 5.0, 'pytorch': 2.0},  # at least this many times faster
    'throughput': 2.0,                             # at least this many times the reference
    'peak_rss_gib': 1.5,                           # at most this much, ours
    'end_to_end': 0.5,                             # at most this fraction of the reference
}

RESULT_MARKER = 'BENCH_RESULT '
LOSS_PATTERN = re.compile(r'MLM loss ([0-9.]+|nan|inf), NSP loss ([0-9.]+|nan|inf)')
THROUGHPUT_PATTERN = re.compile(r'([0-9.]+) sentence pairs/sec on (.*)')
ANSI_ESCAPE = re.compile(r'\x1b\[[0-9;]*m')


def log(message):
    print(f'[bench] {message}', flush=True)


# ---------------------------------------------------------------------------------------------
# Inputs: the offline corpus and the reference library
# ---------------------------------------------------------------------------------------------

def build_offline_corpus(copies):
    """Write valid+test of WikiText-2 (repeated `copies` times) as wiki.train.tokens; return dir."""
    source_dir = SHARED_DIR / 'data' / 'wikitext-2'
    splits = [source_dir / 'wiki.valid.tokens', source_dir / 'wiki.test.tokens']
    missing = [str(path) for path in splits if not path.is_file()]
    if missing:
        raise SystemExit(f'bench: the offline WikiText-2 splits are missing: {missing}. '
                         f'Expected them in {source_dir} (shared, read-only inputs).')
    text = b''.join(path.read_bytes() for path in splits) * copies
    target_dir = BENCH_DIR / ('wikitext2' if copies == 1 else f'wikitext2-x{copies}')
    target = target_dir / 'wiki.train.tokens'
    if not target.is_file() or target.read_bytes() != text:
        target_dir.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text)
        (target_dir / 'README.txt').write_text(
            f'wiki.train.tokens = WikiText-2 wiki.valid.tokens + wiki.test.tokens, repeated '
            f'{copies}x. Written by booktools.bench. NOT the official training split.\n')
    return target_dir


def ensure_reference_library():
    """Unpack the d2l 0.17.6 wheel into _build/reference/site (never into the venv)."""
    site = REFERENCE_DIR / 'site'
    init_file = site / 'd2l' / '__init__.py'
    if init_file.is_file() and f'"{REFERENCE_VERSION}"' in init_file.read_text():
        return site
    wheel_dir = REFERENCE_DIR / 'wheel'
    wheel_dir.mkdir(parents=True, exist_ok=True)
    wheels = sorted(wheel_dir.glob(f'd2l-{REFERENCE_VERSION}-*.whl'))
    if not wheels:
        log(f'downloading d2l=={REFERENCE_VERSION} (no dependencies) into {wheel_dir}')
        command = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
                   '--dest', str(wheel_dir), f'd2l=={REFERENCE_VERSION}']
        completed = subprocess.run(command, capture_output=True, text=True)
        wheels = sorted(wheel_dir.glob(f'd2l-{REFERENCE_VERSION}-*.whl'))
        if completed.returncode != 0 or not wheels:
            raise SystemExit(
                f'bench: could not download d2l {REFERENCE_VERSION} from PyPI:\n'
                f'{completed.stderr.strip()}\nPut the wheel d2l-{REFERENCE_VERSION}-py3-none-any.whl '
                f'into {wheel_dir} by hand, or run with access to PyPI.')
    if site.exists():
        shutil.rmtree(site)
    with zipfile.ZipFile(wheels[-1]) as wheel:
        wheel.extractall(site)
    if not init_file.is_file():
        raise SystemExit(f'bench: {wheels[-1]} did not contain d2l/__init__.py; delete '
                         f'{REFERENCE_DIR} and rerun.')
    return site


# ---------------------------------------------------------------------------------------------
# Notebooks
# ---------------------------------------------------------------------------------------------

def spec_code_blocks(spec_text, framework):
    """Code blocks of a d2lbook markdown source that belong to `framework`, tab line removed.

    No tab line means MXNet; `#@tab pytorch`, `#@tab mxnet`, `#@tab all` (or a comma list).
    """
    blocks, current = [], None
    for line in spec_text.splitlines():
        if current is None:
            if line.strip() == '```{.python .input}':
                current = []
        elif line.strip() == '```':
            blocks.append(current)
            current = None
        else:
            current.append(line)
    if current is not None:
        raise SystemExit('bench: the spec has a code block that is never closed with ```')
    selected = []
    for lines in blocks:
        tabs = ['mxnet']
        if lines and lines[0].strip().startswith('#@tab'):
            tabs = [tab.strip() for tab in lines[0].strip()[len('#@tab'):].split(',')]
            lines = lines[1:]
        if framework in tabs or 'all' in tabs:
            selected.append('\n'.join(lines).strip('\n'))
    return selected


def find_cell(notebook, pattern, what):
    """Index of the only code cell that calls `pattern` at top level (not its definition)."""
    hits = [index for index, cell in enumerate(notebook.cells)
            if cell.cell_type == 'code' and re.search(pattern, cell.source)
            and not re.search(r'^\s*def ', cell.source, re.MULTILINE)]
    if len(hits) != 1:
        raise SystemExit(f'bench: expected exactly one code cell that {what} (regex {pattern!r}), '
                         f'found {len(hits)}. Check the notebook.')
    return hits[0]


DATA_CELL_PATTERN = r'\bload_data_wiki\('
TRAIN_CELL_PATTERN = r'\btrain_bert\('


def set_num_steps(notebook, steps):
    """Make the training cell run `steps` steps instead of the chapter's 50."""
    if steps == DEFAULT_STEPS:
        return
    index = find_cell(notebook, TRAIN_CELL_PATTERN, 'runs train_bert(...)')
    source = notebook.cells[index].source
    changed, count = re.subn(r'(train_bert\(.*,\s*)50(\s*\))', rf'\g<1>{steps}\g<2>', source)
    if count != 1:
        raise SystemExit(f'bench: cannot set --steps: the training cell does not end its '
                         f'train_bert(...) call with the step count 50:\n{source}')
    notebook.cells[index].source = changed


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
        f'print({RESULT_MARKER!r} + _bench_json.dumps(_bench_result))')


def reference_notebook(framework, corpus_dir, reference_site):
    """The spec chapter's code for `framework`, importing d2l 0.17.6, reading the offline corpus."""
    spec = SHARED_DIR / 'spec' / f'{CHAPTER}.ja.md'
    if not spec.is_file():
        raise SystemExit(f'bench: the spec chapter {spec} is missing.')
    blocks = spec_code_blocks(spec.read_text(encoding='utf-8'), framework)
    if not blocks:
        raise SystemExit(f'bench: no {framework} code blocks in {spec}.')
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in blocks]
    # After the imports: make sure it is the reference library, and read the offline corpus
    # instead of downloading WikiText-2 (the reference URL is dead and we are offline).
    patch = nbformat.v4.new_code_cell(
        '# bench: reference library check and offline corpus\n'
        'import d2l as _bench_d2l_package\n'
        f'if _bench_d2l_package.__version__ != {REFERENCE_VERSION!r} or not '
        f'_bench_d2l_package.__file__.startswith({str(reference_site)!r}):\n'
        '    raise RuntimeError(f"bench: imported d2l {_bench_d2l_package.__version__} from "\n'
        f'                       f"{{_bench_d2l_package.__file__}}, expected {REFERENCE_VERSION} "\n'
        f'                       f"from {reference_site}")\n'
        f'd2l.download_extract = lambda name, folder=None: {str(corpus_dir)!r}')
    notebook.cells.insert(1, patch)
    notebook.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3',
                                       'language': 'python'}
    return notebook


def ours_notebook_path(framework):
    return REPO_ROOT / 'chapters' / framework / f'{CHAPTER}.ipynb'


def ours_available(framework):
    module = 'torch' if framework == 'pytorch' else 'mxnet'
    return (ours_notebook_path(framework).is_file()
            and (REPO_ROOT / 'd2l_extras' / f'{module}.py').is_file())


def ours_notebook(framework):
    notebook = nbformat.read(ours_notebook_path(framework), as_version=4)
    for cell in notebook.cells:  # start from a clean copy; the original file is never written
        if cell.cell_type == 'code':
            cell.outputs, cell.execution_count = [], None
    return notebook


def data_prep_only(notebook):
    """The cells up to and including the load_data_wiki call (imports, patch, data)."""
    index = find_cell(notebook, DATA_CELL_PATTERN, 'calls load_data_wiki(...)')
    short = copy.deepcopy(notebook)
    short.cells = short.cells[:index + 1]
    return short


# ---------------------------------------------------------------------------------------------
# Execution
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Run:
    label: str
    cells: list            # [{'index', 'first_line', 'seconds'}] for each executed code cell
    total_seconds: float   # chapter cells only (without the bench's own cells)
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
    steps: int = None      # training steps of the run (None: data preparation only)


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


def execute(label, notebook, env_changes, bench_cell_indices, timeout, steps):
    """Run `notebook` cell by cell in a fresh kernel; time each cell; parse the results."""
    work_dir = BENCH_DIR / 'runs' / label
    if work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    env.update(env_changes)
    notebook = copy.deepcopy(notebook)
    notebook.cells.append(result_cell())
    bench_cell_indices = set(bench_cell_indices) | {len(notebook.cells) - 1}
    client = NotebookClient(notebook, kernel_name='python3', timeout=timeout,
                            resources={'metadata': {'path': str(work_dir)}})
    cells, error = [], None
    log(f'{label}: executing {len(notebook.cells)} cells in a fresh kernel (cwd {work_dir})')
    with client.setup_kernel(env=env):
        for index, cell in enumerate(notebook.cells):
            # after a failure, only the bench's own cells still run (peak memory)
            if cell.cell_type != 'code' or (error and index not in bench_cell_indices):
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
            first_line = next((line for line in cell.source.splitlines()
                               if line.strip() and not line.startswith('#@')), '')
            cells.append({'index': index, 'first_line': first_line[:60], 'seconds': seconds,
                          'bench_cell': index in bench_cell_indices,
                          'peak_rss_mib': kernel_peak_rss_mib(client)})
    nbformat.write(notebook, work_dir / f'{label}.ipynb')  # executed copy, for inspection
    run = Run(label=label, cells=cells, error=error,
              total_seconds=sum(c['seconds'] for c in cells if not c['bench_cell']),
              finished_at=time.strftime('%Y-%m-%d %H:%M:%S'), steps=steps)
    parse_run(run, notebook)
    if error:
        log(f'{label}: ERROR {error} (executed copy: {work_dir / (label + ".ipynb")})')
    print_cell_times(run)
    (BENCH_DIR / 'runs' / f'{label}.json').write_text(json.dumps(dataclasses.asdict(run), indent=1))
    return run


def parse_run(run, notebook):
    executed = {c['index']: c['seconds'] for c in run.cells}
    data_index = find_cell(notebook, DATA_CELL_PATTERN, 'calls load_data_wiki(...)')
    run.data_prep_seconds = executed.get(data_index)
    for index, cell in enumerate(notebook.cells):
        text = cell_text(cell) if cell.cell_type == 'code' else ''
        if RESULT_MARKER in text:
            line = text[text.index(RESULT_MARKER) + len(RESULT_MARKER):].splitlines()[0]
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
    log(f'{run.label}: wall time per cell (s), kernel peak RSS after it (MiB); '
        '* = added by the bench')
    for cell in run.cells:
        mark = '*' if cell['bench_cell'] else ' '
        rss = cell.get('peak_rss_mib')
        rss = f'{rss:7.0f}' if rss is not None else '      ?'
        print(f'    {cell["seconds"]:8.2f} {rss} {mark} [{cell["index"]:2d}] {cell["first_line"]}')
    print(f'    {run.total_seconds:8.2f}   total (chapter cells)', flush=True)


def run_reference(framework, corpus_dir, site, steps, timeout, gpu, data_only=False, tag=''):
    notebook = reference_notebook(framework, corpus_dir, site)
    set_num_steps(notebook, steps)
    if data_only:
        notebook = data_prep_only(notebook)
    label = f'reference-{framework}{tag}'
    env = {'PYTHONPATH': str(site)}
    if not gpu:
        env['CUDA_VISIBLE_DEVICES'] = ''
    return execute(label, notebook, env, bench_cell_indices=[1], timeout=timeout,
                   steps=None if data_only else steps)


def run_ours(framework, corpus_dir, steps, timeout, gpu, data_only=False, tag=''):
    notebook = ours_notebook(framework)
    set_num_steps(notebook, steps)
    if data_only:
        notebook = data_prep_only(notebook)
    label = f'ours-{framework}{tag}'
    env = {'PYTHONPATH': str(REPO_ROOT), 'D2L_WIKITEXT2_DIR': str(corpus_dir)}
    if not gpu:
        env['CUDA_VISIBLE_DEVICES'] = ''
    return execute(label, notebook, env, bench_cell_indices=[], timeout=timeout,
                   steps=None if data_only else steps)


def load_saved_run(label):
    path = BENCH_DIR / 'runs' / f'{label}.json'
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    fields = {field.name for field in dataclasses.fields(Run)}
    return Run(**{key: value for key, value in saved.items() if key in fields})


# ---------------------------------------------------------------------------------------------
# Compute-bound limit
# ---------------------------------------------------------------------------------------------

def matmuls_per_pair(vocab_size):
    """Forward matrix products of one sentence pair of the chapter's small BERT.

    Each entry: (name, count, batched, m, k, n) = `count` products of (m x k) @ (k x n) for one
    pair. Embeddings (table lookups), softmax, LayerNorm and the like are not counted.
    """
    head_size = NUM_HIDDENS // NUM_HEADS
    return [
        ('attention projections q,k,v,o', 4 * NUM_LAYERS, False, MAX_LEN, NUM_HIDDENS, NUM_HIDDENS),
        ('attention scores Q K^T', NUM_HEADS * NUM_LAYERS, True, MAX_LEN, head_size, MAX_LEN),
        ('attention weights x V', NUM_HEADS * NUM_LAYERS, True, MAX_LEN, MAX_LEN, head_size),
        ('FFN dense 1', NUM_LAYERS, False, MAX_LEN, NUM_HIDDENS, FFN_NUM_HIDDENS),
        ('FFN dense 2', NUM_LAYERS, False, MAX_LEN, FFN_NUM_HIDDENS, NUM_HIDDENS),
        ('MLM hidden layer', 1, False, NUM_MLM_PREDS, NUM_HIDDENS, NUM_HIDDENS),
        ('MLM output layer (vocabulary)', 1, False, NUM_MLM_PREDS, NUM_HIDDENS, vocab_size),
        ('NSP hidden layer', 1, False, 1, NUM_HIDDENS, NUM_HIDDENS),
        ('NSP output layer', 1, False, 1, NUM_HIDDENS, 2),
    ]


def measure_matmul_rate(torch, device, batched, m, k, n, count, min_seconds=0.7):
    """Best GFLOP/s of float32 torch.matmul for the shape one batch of 512 pairs computes."""
    if batched:  # one (m x k) @ (k x n) per pair and head, as torch.bmm over the batch
        a = torch.randn(BATCH_SIZE * count, m, k, device=device)
        b = torch.randn(BATCH_SIZE * count, k, n, device=device)
        flops = 2 * BATCH_SIZE * count * m * k * n
    else:  # the rows of all pairs of the batch in one product
        a = torch.randn(BATCH_SIZE * m, k, device=device)
        b = torch.randn(k, n, device=device)
        flops = 2 * BATCH_SIZE * m * k * n

    def synchronize():
        if device.type == 'cuda':
            torch.cuda.synchronize()

    torch.matmul(a, b)  # warm-up
    synchronize()
    # Best of several short bursts: other processes on the machine only ever slow it down.
    best, bursts = 0.0, 7
    for _ in range(bursts):
        repeats, start = 0, time.perf_counter()
        while True:
            torch.matmul(a, b)
            repeats += 1
            synchronize()
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds / bursts:
                break
        best = max(best, flops * repeats / elapsed / 1e9)
    return best


def compute_bound(vocab_size, info, device_name='cpu'):
    """Measure matmul rates at the model's shapes; return the pairs/s limit and the details.

    Other processes on the machine can only slow the measurement down, so the best rate per
    shape seen on this machine so far (cached in _build/bench/matmul-rates.json, keyed by
    device, CPU/GPU model, cores, torch version and threads) is what the limit uses.
    """
    import torch
    device = torch.device(device_name)
    hardware = info['gpu'] if device.type == 'cuda' else f'{info["cpu"]} x{info["cores"]}'
    machine_key = (f'{device_name} | {hardware} | torch {torch.__version__} | '
                   f'{torch.get_num_threads()} threads')
    cache_file = BENCH_DIR / 'matmul-rates.json'
    cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    best_rates = cache.setdefault(machine_key, {})
    rows, seconds_per_pair, forward_flops = [], 0.0, 0
    for name, count, batched, m, k, n in matmuls_per_pair(vocab_size):
        flops = count * 2 * m * k * n
        rate_now = measure_matmul_rate(torch, device, batched, m, k, n, count)
        shape_key = f'{"bmm" if batched else "mm"} {count}x {m}x{k} @ {k}x{n}'
        rate = best_rates[shape_key] = max(rate_now, best_rates.get(shape_key, 0.0))
        # forward + backward ~ 3x forward (backward = two products of the same size)
        seconds_per_pair += 3 * flops / (rate * 1e9)
        forward_flops += flops
        rows.append({'name': name, 'shape': f'{m}x{k} @ {k}x{n}' + (' (batched)' if batched else ''),
                     'count': count, 'forward_mflop': flops / 1e6, 'gflops_now': rate_now,
                     'gflops': rate})
    cache_file.write_text(json.dumps(cache, indent=1))
    return {'device': device_name, 'vocab_size': vocab_size, 'rows': rows,
            'forward_mflop_per_pair': forward_flops / 1e6,
            'train_mflop_per_pair': 3 * forward_flops / 1e6,
            'limit_pairs_per_s': 1 / seconds_per_pair,
            'torch_threads': torch.get_num_threads(), 'cache': str(cache_file)}


def print_compute_bound(bound):
    log(f'compute-bound limit on {bound["device"]} (vocabulary {bound["vocab_size"]}, '
        f'torch threads {bound["torch_threads"]}): float32 matmul GFLOP/s at the model\'s shapes '
        f'(batch {BATCH_SIZE}), measured now and best so far ({bound["cache"]})')
    for row in bound['rows']:
        print(f'    {row["name"]:32s} {row["count"]:2d} x {row["shape"]:26s} '
              f'{row["forward_mflop"]:8.2f} MFLOP/pair  now {row["gflops_now"]:7.1f}  '
              f'best {row["gflops"]:7.1f} GFLOP/s')
    print(f'    one pair: {bound["forward_mflop_per_pair"]:.1f} MFLOP forward, '
          f'~{bound["train_mflop_per_pair"]:.1f} MFLOP forward+backward (3x) '
          f'-> limit {bound["limit_pairs_per_s"]:.0f} pairs/s (at the best rates)', flush=True)


# ---------------------------------------------------------------------------------------------
# Machine and report
# ---------------------------------------------------------------------------------------------

def machine_info():
    cpu_model = 'unknown CPU'
    try:
        for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                cpu_model = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    info = {'cpu': cpu_model, 'cores': len(os.sched_getaffinity(0)),
            'python': sys.version.split()[0], 'gpu': None}
    for package in ('torch', 'mxnet', 'numpy', 'd2l'):
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = 'not installed'
    try:
        info['load_average'] = os.getloadavg()
    except OSError:
        pass
    import torch
    if torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name(0)
    return info


def mxnet_sees_gpu():
    code = 'import mxnet; print(mxnet.context.num_gpus())'
    completed = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    try:
        return int(completed.stdout.strip().splitlines()[-1]) > 0
    except (ValueError, IndexError):
        return False


def fmt(value, digits=1, unit=''):
    if value is None:
        return '—'
    return f'{value:,.{digits}f}{unit}'


def ratio(ours, reference, digits=2):
    if ours is None or reference is None or reference == 0:
        return '—'
    return f'{ours / reference:.{digits}f}'


def wall_clock_throughput(run, steps):
    """Pairs per second over the whole training cell (data loading, plotting and all).

    The printed throughput only times the steps; with MXNet's asynchronous engine the work can
    also spill out of the timed region, so this is the number that cannot flatter. Assumes full
    batches of 512 (the last batch of an epoch is smaller, so it overestimates a little).
    """
    if run is None or run.error or not run.train_seconds:
        return None
    return (run.steps or steps) * BATCH_SIZE / run.train_seconds


def end_to_end(run):
    if run is None:
        return '—'
    return f'failed ({fmt(run.total_seconds)} s)' if run.error else fmt(run.total_seconds)


def peak_rss(run):
    if run is None or run.peak_rss_mib is None:
        return '—'
    return fmt(run.peak_rss_mib, 0) + (' (failed run)' if run.error else '')


def linearity(run_1x, run_5x):
    if run_1x is None or run_5x is None or not run_1x.data_prep_seconds \
            or run_5x.data_prep_seconds is None:
        return None
    return run_5x.data_prep_seconds / run_1x.data_prep_seconds


def framework_table(framework, runs, bound, steps, title_suffix=''):
    """Markdown table for one framework (and device): ours, reference, ratio, target."""
    ours, ref = runs.get('ours'), runs.get('reference')
    ours5, ref5 = runs.get('ours-x5'), runs.get('reference-x5')
    limit = bound['limit_pairs_per_s'] if bound else None

    def get(run, name):
        return getattr(run, name) if run is not None else None

    def get_ok(run, name):  # whole-run numbers mean nothing for a run that failed
        return get(run, name) if run is None or not run.error else None

    def percent_of_limit(pairs_per_second):
        return f'{100 * pairs_per_second / limit:.0f} %' if limit and pairs_per_second else '—'

    def fraction(run):
        return percent_of_limit(get(run, 'throughput'))

    def wall_clock_fraction(run):
        return percent_of_limit(wall_clock_throughput(run, steps))
    data_target = TARGETS['data_prep'][framework]
    lines = [
        f'#### {framework}{title_suffix}',
        '',
        '| measure | ours | reference (d2l 0.17.6) | ours/reference | target |',
        '| --- | ---: | ---: | ---: | --- |',
        f'| data preparation `load_data_wiki(512, 64)`, corpus 1x (s) '
        f'| {fmt(get(ours, "data_prep_seconds"), 2)} | {fmt(get(ref, "data_prep_seconds"), 2)} '
        f'| {ratio(get(ours, "data_prep_seconds"), get(ref, "data_prep_seconds"))} '
        f'| ≤ {1 / data_target:.2f} (≥ {data_target:g}x faster) |',
        f'| data preparation, corpus {CORPUS_COPIES}x (s) '
        f'| {fmt(get(ours5, "data_prep_seconds"), 2)} | {fmt(get(ref5, "data_prep_seconds"), 2)} '
        f'| {ratio(get(ours5, "data_prep_seconds"), get(ref5, "data_prep_seconds"))} | |',
        f'| linearity: time {CORPUS_COPIES}x / time 1x '
        f'| {fmt(linearity(ours, ours5), 2)} | {fmt(linearity(ref, ref5), 2)} | '
        f'| ≈ {CORPUS_COPIES} (linear) |',
        f'| batches of 512 per epoch, corpus 1x / {CORPUS_COPIES}x '
        f'| {fmt(get(ours, "num_batches"), 0)} / {fmt(get(ours5, "num_batches"), 0)} '
        f'| {fmt(get(ref, "num_batches"), 0)} / {fmt(get(ref5, "num_batches"), 0)} | | |',
        f'| training throughput, {steps} steps (sentence pairs/s) '
        f'| {fmt(get(ours, "throughput"))} | {fmt(get(ref, "throughput"))} '
        f'| {ratio(get(ours, "throughput"), get(ref, "throughput"))} '
        f'| ≥ {TARGETS["throughput"]:g} |',
        f'| training cell wall time, {steps} steps (s) '
        f'| {fmt(get_ok(ours, "train_seconds"))} | {fmt(get_ok(ref, "train_seconds"))} '
        f'| {ratio(get_ok(ours, "train_seconds"), get_ok(ref, "train_seconds"))} | |',
        f'| wall-clock throughput ≈ {steps}·{BATCH_SIZE} / training cell time (pairs/s) '
        f'| {fmt(wall_clock_throughput(ours, steps))} | {fmt(wall_clock_throughput(ref, steps))} '
        f'| {ratio(wall_clock_throughput(ours, steps), wall_clock_throughput(ref, steps))} '
        f'| ≥ {TARGETS["throughput"]:g} |',
        f'| final MLM loss / NSP loss '
        f'| {fmt(get(ours, "mlm_loss"), 3)} / {fmt(get(ours, "nsp_loss"), 3)} '
        f'| {fmt(get(ref, "mlm_loss"), 3)} / {fmt(get(ref, "nsp_loss"), 3)} | | |',
        f'| peak RSS of the kernel, ru_maxrss (MiB) '
        f'| {peak_rss(ours)} | {peak_rss(ref)} '
        f'| {ratio(get_ok(ours, "peak_rss_mib"), get_ok(ref, "peak_rss_mib"))} '
        f'| ours ≤ {TARGETS["peak_rss_gib"] * 1024:.0f} MiB |',
        f'| end-to-end, whole notebook top to bottom (s) '
        f'| {end_to_end(ours)} | {end_to_end(ref)} '
        f'| {ratio(get_ok(ours, "total_seconds"), get_ok(ref, "total_seconds"))} '
        f'| ≤ {TARGETS["end_to_end"]:.2f} |',
        f'| compute-bound limit (sentence pairs/s) | {fmt(limit, 0)} | {fmt(limit, 0)} | | |',
        f'| fraction of the limit: printed / wall-clock throughput '
        f'| {fraction(ours)} / {wall_clock_fraction(ours)} '
        f'| {fraction(ref)} / {wall_clock_fraction(ref)} | | |',
    ]
    notes = []
    for run in (ours, ref, ours5, ref5):
        if run is not None and run.error:
            notes.append(f'{run.label}: {run.error}')
        if run is not None and getattr(run, 'reused', False):
            notes.append(f'{run.label}: reused from an earlier run ({run.finished_at})')
            if run.steps not in (None, steps):
                notes.append(f'{run.label}: trained {run.steps} steps, not {steps}: '
                             'throughput and losses are not comparable')
    if ours is None:
        notes.append('ours: not run (notebook or d2l_extras module missing, or --only reference)')
    if notes:
        lines += [''] + [f'- {note}' for note in notes]
    return lines


def report(info, results, bounds, steps, quick):
    lines = [
        '### Benchmark: BERT pretraining chapter, ours vs. d2l 0.17.6',
        '',
        f'Machine: {info["cpu"]}, {info["cores"]} cores'
        + (f', GPU {info["gpu"]}' if info['gpu'] else ', no GPU')
        + f'; Python {info["python"]}, torch {info["torch"]}, mxnet {info["mxnet"]}, '
          f'numpy {info["numpy"]}'
        + (f'; load average (1 min) at start {info["load_average"][0]:.2f}, at end '
           f'{info["load_average_end"][0]:.2f}' if 'load_average_end' in info else '') + '.',
        '',
        'Corpus: WikiText-2 validation + test splits concatenated as `wiki.train.tokens` '
        '(2.4 MB) — **not the official training split** (10.9 MB, not available offline); '
        f'"{CORPUS_COPIES}x" repeats that text {CORPUS_COPIES} times. '
        f'Configuration of the chapter: batch {BATCH_SIZE}, max_len {MAX_LEN}, '
        f'{NUM_LAYERS} layers, {NUM_HIDDENS} hidden units, {NUM_HEADS} heads, FFN '
        f'{FFN_NUM_HIDDENS}, {steps} steps' + (' (--quick)' if quick else '') + '.',
        'Each number comes from one run in a fresh kernel; runs were sequential. '
        'Throughput is the notebook\'s own printout (`sentence pairs/sec`, its timer covers '
        'the training steps only); wall-clock throughput divides the pairs of all steps by the '
        'wall time of the whole training cell; data preparation is the wall time of the `load_data_wiki` cell; end-to-end '
        'sums the wall times of all chapter cells (kernel start excluded).',
    ]
    for key, bound in bounds.items():
        lines.append(
            f'Compute-bound limit ({key}): measured float32 matmul rates at the model\'s shapes '
            f'(best seen on this machine) and ~{bound["train_mflop_per_pair"]:.0f} MFLOP per pair '
            f'(forward+backward ≈ 3x forward; matrix products without embeddings, MLM output '
            f'over {NUM_MLM_PREDS} positions, vocabulary {bound["vocab_size"]}).')
    for (framework, device), runs in results.items():
        bound = bounds.get(device)
        suffix = ' (CPU)' if device == 'cpu' else ' (GPU)'
        lines += [''] + framework_table(framework, runs, bound, steps, suffix)
    return '\n'.join(lines)


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='python -m booktools.bench',
        description='Benchmark the BERT pretraining notebooks (ours) against d2l 0.17.6 '
                    '(reference), one fresh kernel per measurement, one after the other.')
    parser.add_argument('--frameworks', nargs='+', default=list(FRAMEWORKS), metavar='NAME',
                        help='mxnet and/or pytorch (space or comma separated; default both)')
    parser.add_argument('--steps', type=int, default=None,
                        help=f'training steps (default {DEFAULT_STEPS}; {QUICK_STEPS} with --quick)')
    parser.add_argument('--quick', action='store_true',
                        help=f'{QUICK_STEPS} steps and no {CORPUS_COPIES}x-corpus linearity run')
    parser.add_argument('--only', choices=('both', 'ours', 'reference'), default='both',
                        help='which implementation to run (default both)')
    parser.add_argument('--reuse-reference', action='store_true',
                        help='take the reference numbers from the last saved reference runs '
                             '(_build/bench/runs/) instead of running them again; '
                             'works with --only ours too')
    parser.add_argument('--no-gpu', action='store_true',
                        help='skip the GPU runs even if a GPU is present')
    parser.add_argument('--gpu-only', action='store_true',
                        help='skip the CPU runs (needs a GPU)')
    parser.add_argument('--cell-timeout', type=int, default=3600,
                        help='seconds one notebook cell may run (default 3600)')
    args = parser.parse_args(argv)
    frameworks = [name.strip() for item in args.frameworks for name in item.split(',') if name.strip()]
    unknown = sorted(set(frameworks) - set(FRAMEWORKS))
    if unknown:
        parser.error(f'unknown framework(s) {unknown}; choose from {list(FRAMEWORKS)}')
    args.frameworks = frameworks
    if args.steps is None:
        args.steps = QUICK_STEPS if args.quick else DEFAULT_STEPS
    if args.steps < 1:
        parser.error('--steps must be at least 1')
    if args.gpu_only and args.no_gpu:
        parser.error('--gpu-only and --no-gpu exclude each other')
    return args


def main(argv=None):
    args = parse_args(argv)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    (BENCH_DIR / 'runs').mkdir(exist_ok=True)
    info = machine_info()
    log(f'machine: {info}')
    corpus = build_offline_corpus(1)
    corpus_x5 = None if args.quick else build_offline_corpus(CORPUS_COPIES)
    log(f'offline corpus (WikiText-2 valid+test, NOT the official training split): {corpus}')
    run_reference_side = args.only in ('both', 'reference')
    run_ours_side = args.only in ('both', 'ours')
    site = ensure_reference_library() if run_reference_side and not args.reuse_reference else None

    if args.gpu_only and not info['gpu']:
        raise SystemExit('bench: --gpu-only, but torch sees no GPU on this machine')
    devices = [] if args.gpu_only else ['cpu']
    if info['gpu'] and not args.no_gpu:
        devices.append('cuda')
    results = {}
    for device in devices:
        gpu = device == 'cuda'
        for framework in args.frameworks:
            if gpu and framework == 'mxnet' and not mxnet_sees_gpu():
                log('mxnet: this MXNet build sees no GPU; no GPU runs for mxnet')
                continue
            tag = '-gpu' if gpu else ''
            runs = results.setdefault((framework, device), {})
            if run_reference_side or args.reuse_reference:
                if args.reuse_reference:
                    saved_labels = [('reference', f'reference-{framework}{tag}')]
                    if not gpu:  # the 5x data preparation runs on the CPU only
                        saved_labels.append(('reference-x5', f'reference-{framework}-x5'))
                    for key, label in saved_labels:
                        saved = load_saved_run(label)
                        if saved is not None:
                            saved.reused = True
                            runs[key] = saved
                            if saved.steps not in (None, args.steps):
                                log(f'WARNING: the saved {label} trained {saved.steps} steps, '
                                    f'this run {args.steps}; throughput and losses differ')
                        else:
                            log(f'--reuse-reference: no saved run {label}')
                else:
                    runs['reference'] = run_reference(framework, corpus, site, args.steps,
                                                      args.cell_timeout, gpu, tag=tag)
                    if corpus_x5 and not gpu:
                        runs['reference-x5'] = run_reference(
                            framework, corpus_x5, site, args.steps, args.cell_timeout, gpu,
                            data_only=True, tag=f'{tag}-x{CORPUS_COPIES}')
            if run_ours_side:
                if not ours_available(framework):
                    log(f'ours-{framework}: {ours_notebook_path(framework)} or its d2l_extras '
                        'module does not exist yet (run `python -m booktools sync`); skipped')
                else:
                    runs['ours'] = run_ours(framework, corpus, args.steps, args.cell_timeout,
                                            gpu, tag=tag)
                    if corpus_x5 and not gpu:
                        runs['ours-x5'] = run_ours(framework, corpus_x5, args.steps,
                                                   args.cell_timeout, gpu, data_only=True,
                                                   tag=f'{tag}-x{CORPUS_COPIES}')

    vocab_sizes = [run.vocab_size for runs in results.values() for key, run in runs.items()
                   if not key.endswith('x5') and run.vocab_size]
    bounds = {}
    if vocab_sizes:
        vocab_size = statistics.median_low(vocab_sizes)
        for device in devices:
            bounds[device] = compute_bound(vocab_size, info, device)
            print_compute_bound(bounds[device])
    else:
        log('no run reported a vocabulary size; compute-bound limit skipped')

    try:
        info['load_average_end'] = os.getloadavg()
    except OSError:
        pass
    markdown = report(info, results, bounds, args.steps, args.quick)
    (BENCH_DIR / 'results.md').write_text(markdown + '\n')
    (BENCH_DIR / 'results.json').write_text(json.dumps({
        'machine': info, 'steps': args.steps, 'quick': args.quick,
        'bounds': bounds,
        'runs': {f'{framework}/{device}': {key: dataclasses.asdict(run) for key, run in runs.items()}
                 for (framework, device), runs in results.items()},
    }, indent=1))
    print()
    print(markdown)
    print()
    log(f'written: {BENCH_DIR / "results.md"} and {BENCH_DIR / "results.json"}')


if __name__ == '__main__':
    main()
