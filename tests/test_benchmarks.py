"""The benchmark's parts that compute: the limit model, the report, the notebook preparation and
the parsing of a run's printout. Nothing here executes a notebook or times anything."""

import ast

import nbformat
import pytest

from benchmarks import inputs, limit, report, runs
from booktools import source
from booktools.paths import chapter_source

# num_hiddens 4 with 2 heads gives a head size of 2; round(4 * 0.15) = 1 masked position
TINY = limit.Config(
    batch_size=3, max_len=4, num_hiddens=4, ffn_num_hiddens=3, num_heads=2, num_layers=1
)
TINY_VOCAB = 5
# 2·m·k·n FLOPs per (m x k) @ (k x n), worked out by hand for TINY
TINY_FORWARD_FLOPS = [
    4 * 2 * 4 * 4 * 4,  # q, k, v, o projections: 4 of 4x4 @ 4x4
    2 * 2 * 4 * 2 * 4,  # scores, per head: 4x2 @ 2x4
    2 * 2 * 4 * 4 * 2,  # weights x V, per head: 4x4 @ 4x2
    2 * 4 * 4 * 3,  # FFN 1: 4x4 @ 4x3
    2 * 4 * 3 * 4,  # FFN 2: 4x3 @ 3x4
    2 * 1 * 4 * 4,  # MLM hidden: 1x4 @ 4x4
    2 * 1 * 4 * 5,  # MLM output: 1x4 @ 4x5 (vocabulary)
    2 * 1 * 4 * 4,  # NSP hidden
    2 * 1 * 4 * 2,  # NSP output: two classes
]  # 1,080 in all


def test_flops_per_pair_of_a_tiny_bert_match_a_hand_count():
    products = limit.matmuls_per_pair(TINY_VOCAB, TINY)
    assert [p.forward_flops for p in products] == TINY_FORWARD_FLOPS
    assert sum(TINY_FORWARD_FLOPS) == 1080


def test_limit_divides_training_flops_by_the_rate_of_each_shape():
    products = limit.matmuls_per_pair(TINY_VOCAB, TINY)
    at_one_gflops = limit.limit_from_rates(products, {p.key: 1.0 for p in products})
    assert at_one_gflops['forward_mflop_per_pair'] == pytest.approx(1080 / 1e6)
    assert at_one_gflops['train_mflop_per_pair'] == pytest.approx(3 * 1080 / 1e6)
    assert at_one_gflops['limit_pairs_per_s'] == pytest.approx(1e9 / (3 * 1080))
    # the vocabulary product four times as fast: its 40 FLOPs cost a quarter of the time
    rates = {p.key: 1.0 for p in products} | {products[6].key: 4.0}
    faster = limit.limit_from_rates(products, rates)
    assert faster['limit_pairs_per_s'] == pytest.approx(1e9 / (3 * (1080 - 40 + 40 / 4)))


def test_the_chapter_configuration_costs_167_mflop_per_pair():
    # README: "~167 MFLOP per pair" for the vocabulary 6826 of the offline corpus
    products = limit.matmuls_per_pair(6826)
    bound = limit.limit_from_rates(products, {p.key: 1.0 for p in products})
    assert bound['train_mflop_per_pair'] == pytest.approx(166.752768)


def _literal_config(code):
    """batch_size, max_len and the BERTModel(...) sizes that a chapter cell sets."""
    found = {}
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Tuple):
            names = [getattr(target, 'id', None) for target in node.targets[0].elts]
            if names == ['batch_size', 'max_len']:
                found.update(zip(names, ast.literal_eval(node.value)))
        if isinstance(node, ast.Call) and getattr(node.func, 'attr', None) == 'BERTModel':
            found.update(
                {
                    kw.arg: ast.literal_eval(kw.value)
                    for kw in node.keywords
                    if kw.arg in ('num_hiddens', 'ffn_num_hiddens', 'num_heads', 'num_layers')
                }
            )
    return found


@pytest.mark.parametrize('framework', ['mxnet', 'pytorch'])
def test_the_limit_model_uses_the_chapters_configuration(framework):
    items = source.parse(chapter_source(inputs.CHAPTER).read_text(encoding='utf-8'))
    found = {}
    for item in items:
        if item.kind == 'code' and framework in item.frameworks() and item.region is None:
            found.update(_literal_config(item.text))
    expected = limit.CHAPTER_CONFIG
    assert found == {
        'batch_size': expected.batch_size,
        'max_len': expected.max_len,
        'num_hiddens': expected.num_hiddens,
        'ffn_num_hiddens': expected.ffn_num_hiddens,
        'num_heads': expected.num_heads,
        'num_layers': expected.num_layers,
    }


BOUND = {'limit_pairs_per_s': 592.0, 'train_mflop_per_pair': 166.8, 'vocab_size': 6826}


def _runs():
    ours = runs.Run(
        'ours-pytorch',
        cells=[],
        total_seconds=58.4,
        data_prep_seconds=0.33,
        train_seconds=53.7,
        throughput=502.8,
        mlm_loss=6.475,
        nsp_loss=0.787,
        peak_rss_mib=2160.0,
        num_batches=21,
        vocab_size=6826,
        steps=50,
    )
    reference = runs.Run(
        'reference-pytorch',
        cells=[],
        total_seconds=81.0,
        data_prep_seconds=1.32,
        train_seconds=76.5,
        throughput=360.9,
        mlm_loss=4.984,
        nsp_loss=0.764,
        peak_rss_mib=2906.0,
        num_batches=20,
        vocab_size=6828,
        steps=50,
    )
    ours_x5 = runs.Run(
        'ours-pytorch-x5', cells=[], total_seconds=3.0, data_prep_seconds=1.65, num_batches=101
    )
    reference_x5 = runs.Run(
        'reference-pytorch-x5', cells=[], total_seconds=9.0, data_prep_seconds=6.6, num_batches=100
    )
    return {'ours': ours, 'reference': reference, 'ours-x5': ours_x5, 'reference-x5': reference_x5}


def test_framework_table_from_fixed_runs():
    # wall-clock throughput: 50 · 512 / 53.7 s = 476.7 and / 76.5 s = 334.6 pairs/s;
    # of the limit 592: 502.8 -> 85 %, 476.7 -> 81 %, 360.9 -> 61 %, 334.6 -> 57 %
    assert report.framework_table('pytorch', _runs(), BOUND, 50, ' (CPU)') == [
        '#### pytorch (CPU)',
        '',
        '| measure | ours | reference (d2l 0.17.6) | ours/reference | target |',
        '| --- | ---: | ---: | ---: | --- |',
        '| data preparation `load_data_wiki(512, 64)`, corpus 1x (s) | 0.33 | 1.32 | 0.25 '
        '| ≤ 0.50 (≥ 2x faster) |',
        '| data preparation, corpus 5x (s) | 1.65 | 6.60 | 0.25 | |',
        '| linearity: time 5x / time 1x | 5.00 | 5.00 | | ≈ 5 (linear) |',
        '| batches of 512 per epoch, corpus 1x / 5x | 21 / 101 | 20 / 100 | | |',
        '| training throughput, 50 steps (sentence pairs/s) | 502.8 | 360.9 | 1.39 | ≥ 2 |',
        '| training cell wall time, 50 steps (s) | 53.7 | 76.5 | 0.70 | |',
        '| wall-clock throughput ≈ 50·512 / training cell time (pairs/s) | 476.7 | 334.6 '
        '| 1.42 | ≥ 2 |',
        '| final MLM loss / NSP loss | 6.475 / 0.787 | 4.984 / 0.764 | | |',
        '| peak RSS of the kernel, ru_maxrss (MiB) | 2,160 | 2,906 | 0.74 | ours ≤ 1536 MiB |',
        '| end-to-end, whole notebook top to bottom (s) | 58.4 | 81.0 | 0.72 | ≤ 0.50 |',
        '| compute-bound limit (sentence pairs/s) | 592 | 592 | | |',
        '| fraction of the limit: printed / wall-clock throughput | 85 % / 81 % '
        '| 61 % / 57 % | | |',
    ]


def test_table_of_a_failed_run_and_a_reused_reference():
    ours = runs.Run(
        'ours-mxnet',
        cells=[],
        total_seconds=12.0,
        data_prep_seconds=0.4,
        peak_rss_mib=900.0,
        error='cell 13 failed: RuntimeError: boom',
    )
    reference = runs.Run(
        'reference-mxnet',
        cells=[],
        total_seconds=150.0,
        data_prep_seconds=10.0,
        train_seconds=140.0,
        throughput=186.2,
        mlm_loss=6.5,
        nsp_loss=0.8,
        peak_rss_mib=2682.0,
        steps=10,
        finished_at='2026-11-26 10:00:00',
        reused=True,
    )
    table = report.framework_table('mxnet', {'ours': ours, 'reference': reference}, None, 50)
    rows = {line.split(' | ')[0]: line for line in table if line.startswith('| ')}
    assert rows['| data preparation `load_data_wiki(512, 64)`, corpus 1x (s)'].endswith(
        '| 0.40 | 10.00 | 0.04 | ≤ 0.20 (≥ 5x faster) |'
    )
    # whole-run numbers of a failed run get no ratio; the run's own figures are marked
    assert rows['| training cell wall time, 50 steps (s)'].endswith('| — | 140.0 | — | |')
    assert rows['| peak RSS of the kernel, ru_maxrss (MiB)'].endswith(
        '| 900 (failed run) | 2,682 | — | ours ≤ 1536 MiB |'
    )
    assert rows['| end-to-end, whole notebook top to bottom (s)'].endswith(
        '| failed (12.0 s) | 150.0 | — | ≤ 0.50 |'
    )
    assert rows['| compute-bound limit (sentence pairs/s)'].endswith('| — | — | | |')
    # the reused reference trained 10 steps: its wall-clock throughput uses its own count
    assert rows['| wall-clock throughput ≈ 50·512 / training cell time (pairs/s)'].endswith(
        f'| — | {10 * 512 / 140:.1f} | — | ≥ 2 |'
    )
    assert table[-3:] == [
        '- ours-mxnet: cell 13 failed: RuntimeError: boom',
        '- reference-mxnet: reused from an earlier run (2026-11-26 10:00:00)',
        '- reference-mxnet: trained 10 steps, not 50: throughput and losses are not comparable',
    ]


def test_report_names_the_machine_corpus_and_limit():
    info = {
        'cpu': 'AMD EPYC',
        'cores': 2,
        'gpu': None,
        'python': '3.11.7',
        'torch': '2.14.1',
        'mxnet': '1.9.1',
        'numpy': '1.23.5',
        'load_average': (1.77, 1.7, 1.6),
        'load_average_end': (1.78, 1.7, 1.6),
    }
    text = report.report(info, {('pytorch', 'cpu'): _runs()}, {'cpu': BOUND}, 50, quick=False)
    lines = text.splitlines()
    assert lines[2] == (
        'Machine: AMD EPYC, 2 cores, no GPU; Python 3.11.7, torch 2.14.1, mxnet '
        '1.9.1, numpy 1.23.5; load average (1 min) at start 1.77, at end 1.78.'
    )
    assert '**not the official training split**' in lines[4]
    assert lines[4].endswith('FFN 256, 50 steps.')
    assert lines[6].startswith('Compute-bound limit (cpu): ')
    assert '~167 MFLOP per pair' in lines[6] and 'over 10 positions, vocabulary 6826' in lines[6]
    assert lines[8] == '#### pytorch (CPU)'


TRAIN_DEFINITION = 'def train_bert(train_iter, net, loss, vocab_size, devices, num_steps):\n    ...'


def test_spec_training_call_gets_a_parameters_cell_that_papermill_overrides():
    blocks = [
        'from d2l import torch as d2l',
        TRAIN_DEFINITION,
        "x = 'ä'; train_bert(train_iter, net, loss, len(vocab), devices, 50)  # 50 steps",
    ]
    notebook = nbformat.v4.new_notebook(
        metadata={
            'papermill': {},
            'kernelspec': {'name': 'python3', 'language': 'python', 'display_name': 'Python 3'},
        }
    )
    notebook.cells = inputs.with_step_parameter(blocks)
    assert [cell.source for cell in notebook.cells] == [
        'from d2l import torch as d2l',
        TRAIN_DEFINITION,
        'num_steps = 50',
        "x = 'ä'; train_bert(train_iter, net, loss, len(vocab), devices, num_steps)  # 50 steps",
    ]
    assert notebook.cells[2].metadata.tags == [inputs.PARAMETERS_TAG, inputs.BENCH_TAG]
    injected = inputs.with_steps(notebook, 7)
    assert [cell.source.strip().splitlines()[-1] for cell in injected.cells[2:5]] == [
        'num_steps = 50',
        'num_steps = 7',
        notebook.cells[3].source,
    ]
    assert runs.is_bench_cell(injected.cells[3])
    assert len(notebook.cells) == 4  # the notebook itself is left as it was


def test_training_call_without_a_literal_step_count_is_one_clear_error():
    blocks = [TRAIN_DEFINITION, 'train_bert(train_iter, net, loss, len(vocab), devices, steps)']
    with pytest.raises(SystemExit, match='does not end with the step count as a number'):
        inputs.with_step_parameter(blocks)


def test_the_step_variable_is_read_from_the_parameters_cell():
    notebook = nbformat.v4.new_notebook(
        metadata={
            'papermill': {},
            'kernelspec': {'name': 'python3', 'language': 'python', 'display_name': 'Python 3'},
        }
    )
    notebook.cells = [
        nbformat.v4.new_code_cell('total_steps = 50  # renamed', metadata={'tags': ['parameters']}),
        nbformat.v4.new_code_cell('train(total_steps)', metadata={'tags': []}),
    ]
    assert inputs.step_parameter(notebook) == 'total_steps'
    assert inputs.with_steps(notebook, 3).cells[1].source.strip().endswith('total_steps = 3')
    notebook.cells[0].metadata.tags = []
    with pytest.raises(SystemExit, match="tagged 'parameters'"):
        inputs.step_parameter(notebook)


@pytest.mark.skipif(not inputs.SPEC.is_file(), reason='needs the spec chapter in ../shared')
@pytest.mark.parametrize('framework', ['mxnet', 'pytorch'])
def test_reference_notebook_of_the_spec_trains_the_requested_steps(framework, tmp_path):
    notebook = inputs.with_steps(inputs.reference_notebook(framework, tmp_path, tmp_path), 5)
    training = [
        index for index, cell in enumerate(notebook.cells) if cell.source.startswith('train_bert(')
    ]
    assert len(training) == 1
    assert notebook.cells[training[0] - 1].source.strip().endswith('num_steps = 5')
    assert notebook.cells[training[0]].source.endswith(', num_steps)')
    assert inputs.data_cell(notebook) < training[0]


def test_parse_run_reads_the_printout_of_an_executed_notebook():
    def cell(text, printed=None):
        code = nbformat.v4.new_code_cell(text, metadata={'tags': []})
        if printed:
            code.outputs = [nbformat.v4.new_output('stream', name='stdout', text=printed)]
        return code

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        cell('from d2l_extras import torch as d2l'),
        cell('train_iter, vocab = d2l.load_data_wiki(batch_size, max_len)'),
        cell(
            'train_bert(train_iter, net, loss, len(vocab), devices, num_steps)',
            "MLM loss 6.475, NSP loss 0.787\n502.8 sentence pairs/sec on [device(type='cpu')]\n",
        ),
        runs.result_cell(),
    ]
    notebook.cells[3].outputs = [
        nbformat.v4.new_output(
            'stream',
            name='stdout',
            text=(
                'BENCH_RESULT {"ru_maxrss_kib": 2211840, "children_ru_maxrss_kib": 1024, '
                '"vocab_size": 6826, "num_batches": 21}\n'
            ),
        )
    ]
    seconds = [3.0, 0.33, 53.7, 0.01]
    cells = [
        {'index': index, 'seconds': s, 'bench_cell': index == 3} for index, s in enumerate(seconds)
    ]
    run = runs.Run('ours-pytorch', total_seconds=57.03, steps=50, cells=cells)
    runs.parse_run(run, notebook)
    assert (run.data_prep_seconds, run.train_seconds) == (0.33, 53.7)
    assert (run.mlm_loss, run.nsp_loss, run.throughput) == (6.475, 0.787, 502.8)
    assert run.devices == "[device(type='cpu')]"
    assert (run.peak_rss_mib, run.children_peak_rss_mib) == (2160.0, 1.0)
    assert (run.vocab_size, run.num_batches) == (6826, 21)
    assert runs.is_bench_cell(notebook.cells[3]) and not runs.is_bench_cell(notebook.cells[2])
