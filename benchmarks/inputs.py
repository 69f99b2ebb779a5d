"""What the runs need: the corpora, the reference library and the two notebooks."""

import ast
import copy
import re
import shutil
import subprocess
import sys
import zipfile

import nbformat
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook
from papermill.translators import PythonTranslator

from booktools import corpus, source
from booktools.frameworks import LIBRARY_MODULES
from booktools.paths import BUILD_DIR, ROOT, SHARED_DIR, notebook_path

CHAPTER = 'bert-pretraining'
SPEC = SHARED_DIR / 'spec' / f'{CHAPTER}.ja.md'
REFERENCE_VERSION = '0.17.6'
REFERENCE_DIR = BUILD_DIR / 'reference'
CORPUS_COPIES = 5  # the linearity check runs the data preparation on the corpus repeated this often
#: tag of the cells the benchmark adds; they are run but not counted as the chapter's time
BENCH_TAG = 'bench'
PARAMETERS_TAG = 'parameters'  # papermill's tag, set by the chapter's `#@parameters` marker
TRAIN_FUNCTION = 'train_bert'
DATA_CELL_PATTERN = r'\bload_data_wiki\('


class BenchInputError(SystemExit):
    """An input of the benchmark is missing or not as expected (exits with its message)."""

    def __init__(self, message):
        super().__init__(f'bench: {message}')


def log(message):
    print(f'[bench] {message}', flush=True)


# ---------------------------------------------------------------------------------------------
# Corpora and the reference library
# ---------------------------------------------------------------------------------------------


def corpora(quick):
    """{copies: directory} of the offline corpus: 1x always, CORPUS_COPIES x unless quick."""
    copies = (1,) if quick else (1, CORPUS_COPIES)
    try:
        return {n: corpus.offline_corpus(copies=n) for n in copies}
    except FileNotFoundError as error:
        raise BenchInputError(str(error)) from None


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
        command = [
            sys.executable,
            '-m',
            'pip',
            'download',
            '--no-deps',
            '--only-binary=:all:',
            '--dest',
            str(wheel_dir),
            f'd2l=={REFERENCE_VERSION}',
        ]
        completed = subprocess.run(command, capture_output=True, text=True)
        wheels = sorted(wheel_dir.glob(f'd2l-{REFERENCE_VERSION}-*.whl'))
        if completed.returncode != 0 or not wheels:
            raise BenchInputError(
                f'could not download d2l {REFERENCE_VERSION} from PyPI:\n'
                f'{completed.stderr.strip()}\nPut the wheel '
                f'd2l-{REFERENCE_VERSION}-py3-none-any.whl into {wheel_dir} by hand, or run '
                'with access to PyPI.'
            )
    if site.exists():
        shutil.rmtree(site)
    with zipfile.ZipFile(wheels[-1]) as wheel:
        wheel.extractall(site)
    if not init_file.is_file():
        raise BenchInputError(
            f'{wheels[-1]} did not contain d2l/__init__.py; delete {REFERENCE_DIR} and rerun.'
        )
    return site


# ---------------------------------------------------------------------------------------------
# The two notebooks
# ---------------------------------------------------------------------------------------------


def _code_cell(text, *tags):
    # papermill looks for its tags on every cell, as its own notebook loader provides them
    return nbformat.v4.new_code_cell(text, metadata={'tags': list(tags)})


def _module(text):
    try:
        return ast.parse(text)
    except SyntaxError:  # IPython magics and the like: no definition or call we look for
        return ast.Module(body=[], type_ignores=[])


def _is_train_call(node):
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id == TRAIN_FUNCTION
    )


def with_step_parameter(blocks):
    """The spec's code blocks with the step count in a papermill ``parameters`` cell.

    The spec calls ``train_bert(..., 50)``; papermill needs a variable, so the literal becomes
    the name of ``train_bert``'s last argument in the spec's own definition (``num_steps``),
    assigned in a new cell just before the call.
    """
    trees = [_module(text) for text in blocks]
    names = [
        node.args.args[-1].arg
        for tree in trees
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name == TRAIN_FUNCTION
    ]
    calls = [
        (index, node.value)
        for index, tree in enumerate(trees)
        for node in tree.body
        if _is_train_call(node)
    ]
    if len(names) != 1 or len(calls) != 1:
        raise BenchInputError(
            f'{SPEC}: expected one definition and one top-level call of '
            f'{TRAIN_FUNCTION}, found {len(names)} and {len(calls)}.'
        )
    index, call = calls[0]
    steps = call.args[-1] if call.args else None
    if not (
        isinstance(steps, ast.Constant)
        and type(steps.value) is int
        and steps.lineno == steps.end_lineno
    ):
        raise BenchInputError(
            f'{SPEC}: the {TRAIN_FUNCTION}(...) call does not end with the '
            f'step count as a number:\n{blocks[index]}'
        )
    lines = blocks[index].split('\n')
    line = lines[steps.lineno - 1].encode()  # ast offsets count UTF-8 bytes
    lines[steps.lineno - 1] = (
        line[: steps.col_offset].decode() + names[0] + line[steps.end_col_offset :].decode()
    )
    cells = [_code_cell(text) for text in blocks]
    cells[index] = _code_cell('\n'.join(lines))
    cells.insert(index, _code_cell(f'{names[0]} = {steps.value}', PARAMETERS_TAG, BENCH_TAG))
    return cells


def reference_notebook(framework, corpus_dir, reference_site):
    """The spec chapter's code for `framework`, importing d2l 0.17.6, reading the offline corpus."""
    if not SPEC.is_file():
        raise BenchInputError(
            f'the spec chapter {SPEC} is missing (set BOOK_SHARED_DIR to the '
            'folder that holds spec/).'
        )
    items = source.parse(SPEC.read_text(encoding='utf-8'), str(SPEC))
    blocks = [item.text for item in items if item.kind == 'code' and framework in item.frameworks()]
    if not blocks:
        raise BenchInputError(f'no {framework} code blocks in {SPEC}.')
    notebook = nbformat.v4.new_notebook()
    notebook.cells = with_step_parameter(blocks)
    # After the imports: make sure it is the reference library, and read the offline corpus
    # instead of downloading WikiText-2 (the reference URL is dead and we are offline).
    patch = _code_cell(
        '# bench: reference library check and offline corpus\n'
        'import d2l as _bench_d2l_package\n'
        f'if _bench_d2l_package.__version__ != {REFERENCE_VERSION!r} or not '
        f'_bench_d2l_package.__file__.startswith({str(reference_site)!r}):\n'
        '    raise RuntimeError(f"bench: imported d2l {_bench_d2l_package.__version__} "\n'
        f'                       f"from {{_bench_d2l_package.__file__}}, "\n'
        f'                       f"expected {REFERENCE_VERSION} from {reference_site}")\n'
        f'd2l.download_extract = lambda name, folder=None: {str(corpus_dir)!r}',
        BENCH_TAG,
    )
    notebook.cells.insert(1, patch)
    notebook.metadata['kernelspec'] = {
        'name': 'python3',
        'display_name': 'Python 3',
        'language': 'python',
    }
    notebook.metadata['papermill'] = {}
    return notebook


def ours_available(framework):
    return (
        notebook_path(CHAPTER, framework).is_file()
        and (ROOT / 'd2l_extras' / f'{LIBRARY_MODULES[framework]}.py').is_file()
    )


def ours_notebook(framework):
    notebook = load_notebook_node(str(notebook_path(CHAPTER, framework)))
    for cell in notebook.cells:  # start from a clean copy; the original file is never written
        if cell.cell_type == 'code':
            cell.outputs, cell.execution_count = [], None
    return notebook


def step_parameter(notebook):
    """The name of the one variable that the notebook's ``parameters`` cell assigns."""
    cells = [cell for cell in notebook.cells if PARAMETERS_TAG in cell.metadata.get('tags', [])]
    parameters = PythonTranslator.inspect(cells[0]) if len(cells) == 1 else []
    if len(parameters) != 1:
        raise BenchInputError(
            f'expected one cell tagged {PARAMETERS_TAG!r} that assigns one variable (the step '
            f'count), found {len(cells)} cell(s) and {[p.name for p in parameters]}. Mark the '
            'step count in the chapter with #@parameters.'
        )
    return parameters[0].name


def with_steps(notebook, steps):
    """A copy of `notebook` that trains `steps` steps: papermill injects the parameter."""
    notebook = copy.deepcopy(notebook)
    return parameterize_notebook(
        notebook, {step_parameter(notebook): steps}, comment='Parameters set by the benchmark'
    )


def find_cell(notebook, pattern, what):
    """Index of the only code cell that calls `pattern` at top level (not its definition)."""
    hits = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == 'code'
        and re.search(pattern, cell.source)
        and not re.search(r'^\s*def ', cell.source, re.MULTILINE)
    ]
    if len(hits) != 1:
        raise BenchInputError(
            f'expected exactly one code cell that {what} (regex {pattern!r}), '
            f'found {len(hits)}. Check the notebook.'
        )
    return hits[0]


def data_cell(notebook):
    return find_cell(notebook, DATA_CELL_PATTERN, 'calls load_data_wiki(...)')


def data_prep_only(notebook):
    """The cells up to and including the load_data_wiki call (imports, patch, data)."""
    short = copy.deepcopy(notebook)
    short.cells = short.cells[: data_cell(notebook) + 1]
    return short
