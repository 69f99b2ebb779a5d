"""The report: the machine it ran on, and one table per framework and device."""

import importlib.metadata
import os
import pathlib
import subprocess
import sys

from .inputs import CORPUS_COPIES, REFERENCE_VERSION
from .limit import CHAPTER_CONFIG

# Targets from the project plan; printed next to the ratios, never enforced.
TARGETS = {
    'data_prep': {'mxnet': 5.0, 'pytorch': 2.0},  # at least this many times faster
    'throughput': 2.0,  # at least this many times the reference
    'peak_rss_gib': 1.5,  # at most this much, ours
    'end_to_end': 0.5,  # at most this fraction of the reference
}


def machine_info():
    cpu_model = 'unknown CPU'
    try:
        for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                cpu_model = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        'cpu': cpu_model,
        'cores': len(os.sched_getaffinity(0)),
        'python': sys.version.split()[0],
        'gpu': None,
    }
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
    return (run.steps or steps) * CHAPTER_CONFIG.batch_size / run.train_seconds


def end_to_end(run):
    if run is None:
        return '—'
    return f'failed ({fmt(run.total_seconds)} s)' if run.error else fmt(run.total_seconds)


def peak_rss(run):
    if run is None or run.peak_rss_mib is None:
        return '—'
    return fmt(run.peak_rss_mib, 0) + (' (failed run)' if run.error else '')


def linearity(run_1x, run_5x):
    if (
        run_1x is None
        or run_5x is None
        or not run_1x.data_prep_seconds
        or run_5x.data_prep_seconds is None
    ):
        return None
    return run_5x.data_prep_seconds / run_1x.data_prep_seconds


def framework_table(framework, runs, bound, steps, title_suffix=''):
    """Markdown table for one framework (and device): ours, reference, ratio, target.

    `runs` maps 'ours', 'reference', 'ours-x5', 'reference-x5' to a Run (any may be missing);
    `bound` is the compute-bound limit of the device (or None).
    """
    c = CHAPTER_CONFIG
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
        f'| measure | ours | reference (d2l {REFERENCE_VERSION}) | ours/reference | target |',
        '| --- | ---: | ---: | ---: | --- |',
        f'| data preparation `load_data_wiki({c.batch_size}, {c.max_len})`, corpus 1x (s) '
        f'| {fmt(get(ours, "data_prep_seconds"), 2)} | {fmt(get(ref, "data_prep_seconds"), 2)} '
        f'| {ratio(get(ours, "data_prep_seconds"), get(ref, "data_prep_seconds"))} '
        f'| ≤ {1 / data_target:.2f} (≥ {data_target:g}x faster) |',
        f'| data preparation, corpus {CORPUS_COPIES}x (s) '
        f'| {fmt(get(ours5, "data_prep_seconds"), 2)} | {fmt(get(ref5, "data_prep_seconds"), 2)} '
        f'| {ratio(get(ours5, "data_prep_seconds"), get(ref5, "data_prep_seconds"))} | |',
        f'| linearity: time {CORPUS_COPIES}x / time 1x '
        f'| {fmt(linearity(ours, ours5), 2)} | {fmt(linearity(ref, ref5), 2)} | '
        f'| ≈ {CORPUS_COPIES} (linear) |',
        f'| batches of {c.batch_size} per epoch, corpus 1x / {CORPUS_COPIES}x '
        f'| {fmt(get(ours, "num_batches"), 0)} / {fmt(get(ours5, "num_batches"), 0)} '
        f'| {fmt(get(ref, "num_batches"), 0)} / {fmt(get(ref5, "num_batches"), 0)} | | |',
        f'| training throughput, {steps} steps (sentence pairs/s) '
        f'| {fmt(get(ours, "throughput"))} | {fmt(get(ref, "throughput"))} '
        f'| {ratio(get(ours, "throughput"), get(ref, "throughput"))} '
        f'| ≥ {TARGETS["throughput"]:g} |',
        f'| training cell wall time, {steps} steps (s) '
        f'| {fmt(get_ok(ours, "train_seconds"))} | {fmt(get_ok(ref, "train_seconds"))} '
        f'| {ratio(get_ok(ours, "train_seconds"), get_ok(ref, "train_seconds"))} | |',
        f'| wall-clock throughput ≈ {steps}·{c.batch_size} / training cell time (pairs/s) '
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
        if run is not None and run.reused:
            notes.append(f'{run.label}: reused from an earlier run ({run.finished_at})')
            if run.steps not in (None, steps):
                notes.append(
                    f'{run.label}: trained {run.steps} steps, not {steps}: '
                    'throughput and losses are not comparable'
                )
    if ours is None:
        notes.append('ours: not run (notebook or d2l_extras module missing, or --only reference)')
    if notes:
        lines += [''] + [f'- {note}' for note in notes]
    return lines


def report(info, results, bounds, steps, quick):
    """The whole report: machine, corpus, method, then `results[(framework, device)]` tables."""
    c = CHAPTER_CONFIG
    lines = [
        f'### Benchmark: BERT pretraining chapter, ours vs. d2l {REFERENCE_VERSION}',
        '',
        f'Machine: {info["cpu"]}, {info["cores"]} cores'
        + (f', GPU {info["gpu"]}' if info['gpu'] else ', no GPU')
        + f'; Python {info["python"]}, torch {info["torch"]}, mxnet {info["mxnet"]}, '
        f'numpy {info["numpy"]}'
        + (
            f'; load average (1 min) at start {info["load_average"][0]:.2f}, at end '
            f'{info["load_average_end"][0]:.2f}'
            if 'load_average_end' in info
            else ''
        )
        + '.',
        '',
        'Corpus: WikiText-2 validation + test splits concatenated as `wiki.train.tokens` '
        '(2.4 MB) — **not the official training split** (10.9 MB, not available offline); '
        f'"{CORPUS_COPIES}x" repeats that text {CORPUS_COPIES} times. '
        f'Configuration of the chapter: batch {c.batch_size}, max_len {c.max_len}, '
        f'{c.num_layers} layers, {c.num_hiddens} hidden units, {c.num_heads} heads, FFN '
        f'{c.ffn_num_hiddens}, {steps} steps' + (' (--quick)' if quick else '') + '.',
        'Each number comes from one run in a fresh kernel; runs were sequential. '
        "Throughput is the notebook's own printout (`sentence pairs/sec`, its timer covers "
        'the training steps only); wall-clock throughput divides the pairs of all steps by the '
        'wall time of the whole training cell; data preparation is the wall time of the '
        '`load_data_wiki` cell; end-to-end sums the wall times of all chapter cells (kernel '
        'start excluded).',
    ]
    for key, bound in bounds.items():
        lines.append(
            f"Compute-bound limit ({key}): measured float32 matmul rates at the model's shapes "
            f'(best seen on this machine) and ~{bound["train_mflop_per_pair"]:.0f} MFLOP per pair '
            f'(forward+backward ≈ 3x forward; matrix products without embeddings, MLM output '
            f'over {c.num_mlm_preds} positions, vocabulary {bound["vocab_size"]}).'
        )
    for (framework, device), runs in results.items():
        bound = bounds.get(device)
        suffix = ' (CPU)' if device == 'cpu' else ' (GPU)'
        lines += [''] + framework_table(framework, runs, bound, steps, suffix)
    return '\n'.join(lines)
