"""The chapters say what their stored outputs show: quoted values, the contextual-encoding
claims, exercise 2's honest answer on a small machine, and the figures and folded columns."""

import contextlib
import io
import math
import re

import nbformat
import pytest

from booktools import book, markup, notebooks, source
from booktools.frameworks import FRAMEWORKS
from booktools.paths import ROOT, chapter_source, notebook_path

CHAPTERS = ('bert', 'bert-dataset', 'bert-pretraining')
FIGURE = re.compile(r'!\[([^\]]*)\]\((\.\./figures/[^)]+)\)')
# A number with a unit that can drift between runs or machines
QUANTITY = re.compile(r'(\d[\d,.]*)\s*(%|GiB|MiB|秒|倍|ペア)')
# Numbers that define the method rather than report a run (masking rule, NSP rule, the
# configuration of the chapters); each is in the prose on purpose
DEFINITIONS = {'15', '80', '10', '50', '20'}
# Phrases whose number is a unit or plain arithmetic on the configuration, not a measurement
NOT_MEASURED = {
    '1 秒',  # 「1 秒あたりの文のペア数」: the unit of the printed throughput
    '512 ペア',  # the batch size
    '8 倍',
    '64 倍',  # max_len 64 -> 512 is 8 times, its square 64 times
}


def _items(name):
    return source.parse(chapter_source(name).read_text(encoding='utf-8'))


def _prose(name):
    return '\n'.join(item.text for item in _items(name) if item.kind == 'markdown')


def _outputs(name, framework):
    """The text of every stored output of one notebook."""
    nb = nbformat.read(notebook_path(name, framework), as_version=4)
    texts = []
    for cell in nb.cells:
        for output in cell.get('outputs', []):
            text = output.get('text') or output.get('data', {}).get('text/plain', '')
            texts.append(text if isinstance(text, str) else ''.join(text))
    return '\n'.join(texts)


def _cell_output(name, framework, marker):
    """The stored output of the only code cell whose source contains ``marker``."""
    nb = nbformat.read(notebook_path(name, framework), as_version=4)
    cells = [c for c in nb.cells if c.cell_type == 'code' and marker in c.source]
    assert len(cells) == 1, f'{name} ({framework}): {len(cells)} cells contain {marker!r}'
    return ''.join(o.get('text', '') for o in cells[0].outputs)


@pytest.mark.parametrize('name', CHAPTERS)
def test_every_quantity_in_the_prose_is_in_the_outputs(name):
    outputs = '\n'.join(_outputs(name, fw) for fw in FRAMEWORKS)
    missing = [
        m.group(0)
        for m in QUANTITY.finditer(_prose(name))
        if m.group(1) not in DEFINITIONS
        and m.group(0) not in NOT_MEASURED
        and m.group(1) not in outputs
    ]
    assert not missing, f'{name}: quoted values that no stored output shows: {missing}'


# (chapter, phrase in the prose, what an output must print for the phrase to be true)
QUOTED = [
    ('bert', '次の出力のとおり 2.1 GiB', r'2\.1 GiB 100\.0%  合計'),
    ('bert-dataset', '64 で約 2 割', r'max_len=64: (1[5-9]|2[0-4])\.\d% dropped'),
    ('bert-dataset', '32 で 9 割近く', r'max_len=32: 8[5-9]\.\d% dropped'),
    ('bert-dataset', '128 ではほとんど捨てられません', r'max_len=128: [0-2]\.\d% dropped'),
    (
        'bert-dataset',
        '半々より少し大きく',
        r'max_len=32: .*, 5[0-4]\.\d% of the kept labels are True',
    ),
    ('bert', '約 1 億 3300 万', r'BERT_BASE: 132\.\dM parameters'),
    ('bert', '3 億 6600 万', r'BERT_LARGE: 366\.\dM parameters'),
    ('bert', '約 1 億 1000 万と 3 億 3600 万', r'109\.\dM with .*\n.*335\.\dM with'),
    ('bert', '最大長 2048 では合計の 8 割', r'base  max_len=2048: .*attention  8\d%'),
    ('bert-pretraining', 'その数は次のセルが表示します', r'語彙数 \d+'),
]


@pytest.mark.parametrize('name, phrase, printed', QUOTED)
def test_quoted_values_match_the_outputs(name, phrase, printed):
    assert phrase in _prose(name), f'{name} no longer says {phrase!r}; update QUOTED'
    for fw in FRAMEWORKS:
        assert re.search(printed, _outputs(name, fw)), (
            f'{name} ({fw}) says {phrase!r}, but no output matches {printed!r}'
        )


def test_the_paper_gap_is_what_the_outputs_give():
    prose = _prose('bert')
    gap = re.search(r'3 億 4000 万との差は ([\d.]+)% 程度', prose)
    assert gap, 'the BERT_LARGE gap is no longer quoted; update this test'
    tied = float(
        re.search(
            r'([\d.]+)M with the output layer tied',
            _outputs('bert', 'pytorch').split('BERT_LARGE')[1],
        ).group(1)
    )
    assert f'{(340 - tied) / 340:.1%}' == f'{gap.group(1)}%'


def _numbers(framework, marker, pattern):
    """The matches of ``pattern`` (its groups as floats) in the output of the ``marker`` cell."""
    text = _cell_output('bert-pretraining', framework, marker)
    found = [tuple(float(g) for g in m.groups()) for m in re.finditer(pattern, text)]
    assert found, f'{framework}: no {pattern!r} in the output of the cell with {marker!r}'
    return found


def _metrics(framework, name):
    line = rf'{name}: MLM loss ([\d.]+) accuracy ([\d.]+) \| NSP loss ([\d.]+) accuracy ([\d.]+)'
    return _numbers(framework, "show_metrics('pretrained'", line)[0]


def _baselines(framework):
    ((ln_v, entropy),) = _numbers(
        framework, 'unigram_entropy = float', r'ln\|V\| = ([\d.]+), unigram entropy = ([\d.]+)'
    )
    ((most_frequent,),) = _numbers(framework, 'unigram_entropy = float', r'MLM accuracy ([\d.]+)')
    return ln_v, entropy, most_frequent


@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_the_50_step_model_collapsed_and_the_untrained_one_did_not(framework):
    found = _numbers(
        framework,
        'probe = next(iter(heldout_iter))',
        r'mean cosine similarity of \d+ encodings ([\d.]+)',
    )
    (untrained,), (trained_50,) = found
    assert trained_50 > 0.95 and untrained < trained_50, (untrained, trained_50)


@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_the_token_embedding_is_context_free(framework):
    ((same, _),) = _numbers(
        framework, 'def crane_similarities', r'token embedding\s+([\d.]+)\s+(-?[\d.]+)'
    )
    assert same == 1.0


@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_the_pretrained_model_beats_every_baseline_on_held_out_pairs(framework):
    ln_v, entropy, most_frequent = _baselines(framework)
    mlm_loss, mlm_accuracy, nsp_loss, nsp_accuracy = _metrics(framework, 'pretrained')
    assert mlm_loss < entropy < ln_v
    assert mlm_accuracy > most_frequent
    # next sentence prediction: above chance for PyTorch's 2,000 steps, chance for MXNet's 800,
    # as the text says (1,064 held-out pairs: a standard error of about 0.015)
    if framework == 'pytorch':
        assert nsp_accuracy > 0.55 and nsp_loss < math.log(2)
    else:
        assert abs(nsp_accuracy - 0.5) < 0.05


@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_the_50_step_model_is_near_the_unigram_baseline(framework):
    _, entropy, most_frequent = _baselines(framework)
    mlm_loss, mlm_accuracy, _, nsp_accuracy = _metrics(framework, '50 steps, lr 0.01')
    assert abs(mlm_loss - entropy) < 0.3 and abs(mlm_accuracy - most_frequent) < 0.02
    assert abs(nsp_accuracy - 0.5) < 0.06


@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_throughput_agrees_with_the_wall_clock(framework):
    text = _cell_output('bert-pretraining', framework, 'timer = d2l.Timer()')
    pairs = float(
        re.search(r'([\d,]+) sentence pairs in \d+ steps', text).group(1).replace(',', '')
    )
    rate = float(re.search(r'([\d.]+) sentence pairs/sec', text).group(1))
    wall = float(re.search(r'([\d.]+) sec wall clock', text).group(1))
    # The timer holds the forward and backward passes and the update; the cell's wall clock
    # also holds data loading and plotting. MXNet's timer waits for its asynchronous engine,
    # so the two agree within 10 %; PyTorch (synchronous on the CPU) spends more of the
    # cell outside the timer
    timed = pairs / rate
    assert timed <= wall * 1.01, (timed, wall)
    assert timed >= wall * (0.9 if framework == 'mxnet' else 0.8), (timed, wall)


def test_the_encodings_are_computed_in_inference_mode():
    nb = nbformat.read(notebook_path('bert-pretraining', 'pytorch'), as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == 'code']
    first_encoding = next(i for i, c in enumerate(code) if 'encoded_text = get_bert' in c)
    assert any('net.eval()' in c for c in code[:first_encoding])
    assert 'training mode: False' in _cell_output(
        'bert-pretraining', 'pytorch', "print('training mode:'"
    )


def _exercise_cells():
    items = [
        i
        for i in _items('bert-pretraining')
        if i.kind == 'code' and i.region == ('solution', 'ex_bert_pretraining_large')
    ]
    large = next(i.text for i in items if i.text.startswith('large = '))
    search = next(i.text for i in items if 'for batch_size in' in i.text)
    return large.split('\nprint')[0], search


@pytest.mark.parametrize('free_gib, expected', [(2, '収まりません'), (64, '収まります')])
def test_exercise_2_says_whether_anything_fits(monkeypatch, free_gib, expected):
    d2l = pytest.importorskip('d2l_extras.torch')
    monkeypatch.setattr(d2l, 'available_memory', lambda device=None: free_gib * 2**30)
    large, search = _exercise_cells()
    namespace = {'d2l': d2l, 'vocab': range(6826)}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(large, namespace)
        exec(search, namespace)
    assert printed.getvalue().splitlines()[0].endswith(expected), printed.getvalue()


def test_chapters_show_at_least_four_figures_with_alt_text():
    figures = [m for name in CHAPTERS for m in FIGURE.finditer(_prose(name))]
    assert len({path for _, path in (m.groups() for m in figures)}) >= 4
    for m in figures:
        alt, path = m.groups()
        assert len(alt) > 20, f'{path}: the alt text should describe the figure'
        svg = ROOT / 'chapters' / path.removeprefix('../')
        assert svg.is_file(), f'{path} is not in chapters/figures'
        text = svg.read_text(encoding='utf-8')
        assert '<title' in text and '<desc' in text


@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_notebooks_and_pages_name_figures_relative_to_their_folder(framework):
    chapters = book.load_chapters()
    index = book.label_index(chapters)
    for name in CHAPTERS:
        items = chapters[name][1]
        nb = notebooks.framework_notebook(items, framework, index)
        sources = '\n'.join(c.source for c in nb.cells if c.cell_type == 'markdown')
        for _, path in FIGURE.findall(_prose(name)):
            assert path in sources
            # chapters/<framework>/ and chapters/tabbed/ are both one folder below chapters/
            assert (notebook_path(name, framework).parent / path).resolve().is_file()


def test_folded_columns_become_details_in_notebooks_and_stay_directives_in_the_book():
    text = '前\n\n:::{admonition} コラム: 高速化の工夫\n:class: dropdown\n\n速い理由。\n:::\n\n後'
    notebook = markup.to_notebook_markdown(text, {})
    assert '<details>' in notebook
    assert '<summary><strong>コラム: 高速化の工夫</strong></summary>' in notebook
    assert ':::' not in notebook and '速い理由。' in notebook
    assert markup.to_myst(text, {}) == text


def test_student_tree_copies_the_figures(tmp_path):
    target = book.student_tree(tmp_path / 'student')
    copied = {p.name for p in (target / book.FIGURES).iterdir()}
    assert copied == {p.name for p in (ROOT / book.FIGURES).iterdir()}


def test_every_measured_decimal_in_the_pretraining_prose_is_printed():
    """A number written with 3 or 4 decimals (a loss, an accuracy, a similarity) is a
    measurement: some stored output of the chapter prints it."""
    outputs = '\n'.join(_outputs('bert-pretraining', fw) for fw in FRAMEWORKS)
    quoted = set(re.findall(r'(?<![\d.])\d+\.\d{3,4}(?![\d])', _prose('bert-pretraining')))
    assert len(quoted) > 30, quoted
    missing = sorted(q for q in quoted if q not in outputs)
    assert not missing, f'numbers in the prose that no output prints: {missing}'
