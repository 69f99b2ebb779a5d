"""Command line of the benchmark: ``python -m benchmarks`` (see the package docstring)."""

import argparse
import dataclasses
import json
import os
import statistics

from booktools.frameworks import FRAMEWORKS
from booktools.paths import notebook_path

from . import BENCH_DIR
from .inputs import CHAPTER, CORPUS_COPIES, corpora, ensure_reference_library, log, ours_available
from .limit import compute_bound, print_compute_bound
from .report import machine_info, mxnet_sees_gpu, report
from .runs import RUNS_DIR, load_saved_run, run_ours, run_reference

DEFAULT_STEPS = 50  # the chapter's own step count
QUICK_STEPS = 10


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='python -m benchmarks',
        description='Benchmark the BERT pretraining notebooks (ours) against d2l 0.17.6 '
        '(reference), one fresh kernel per measurement, one after the other.',
    )
    parser.add_argument(
        '--frameworks',
        nargs='+',
        default=list(FRAMEWORKS),
        metavar='NAME',
        help='mxnet and/or pytorch (space or comma separated; default both)',
    )
    parser.add_argument(
        '--steps',
        type=int,
        default=None,
        help=f"training steps, set through the notebooks' papermill parameters "
        f'cell (default {DEFAULT_STEPS}; {QUICK_STEPS} with --quick)',
    )
    parser.add_argument(
        '--quick',
        action='store_true',
        help=f'{QUICK_STEPS} steps and no {CORPUS_COPIES}x-corpus linearity run',
    )
    parser.add_argument(
        '--only',
        choices=('both', 'ours', 'reference'),
        default='both',
        help='which implementation to run (default both)',
    )
    parser.add_argument(
        '--reuse-reference',
        action='store_true',
        help='take the reference numbers from the last saved reference runs '
        '(_build/bench/runs/) instead of running them again; '
        'works with --only ours too',
    )
    parser.add_argument(
        '--no-gpu', action='store_true', help='skip the GPU runs even if a GPU is present'
    )
    parser.add_argument('--gpu-only', action='store_true', help='skip the CPU runs (needs a GPU)')
    parser.add_argument(
        '--cell-timeout',
        type=int,
        default=3600,
        help='seconds one notebook cell may run (default 3600)',
    )
    args = parser.parse_args(argv)
    frameworks = [
        name.strip() for item in args.frameworks for name in item.split(',') if name.strip()
    ]
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


def saved_reference_runs(framework, tag, steps):
    """--reuse-reference: the reference runs saved by an earlier benchmark."""
    runs = {}
    saved_labels = [('reference', f'reference-{framework}{tag}')]
    if not tag:  # the corpus-5x data preparation runs on the CPU only
        saved_labels.append(('reference-x5', f'reference-{framework}-x{CORPUS_COPIES}'))
    for key, label in saved_labels:
        saved = load_saved_run(label)
        if saved is None:
            log(f'--reuse-reference: no saved run {label}')
            continue
        runs[key] = saved
        if saved.steps not in (None, steps):
            log(
                f'WARNING: the saved {label} trained {saved.steps} steps, '
                f'this run {steps}; throughput and losses differ'
            )
    return runs


def framework_runs(framework, gpu, args, corpus, site):
    """The runs of one framework on one device: {'ours', 'reference', 'ours-x5', ...: Run}."""
    tag = '-gpu' if gpu else ''
    corpus_x5 = corpus.get(CORPUS_COPIES) if not gpu else None  # data preparation: CPU only
    runs = {}
    if args.reuse_reference:
        runs.update(saved_reference_runs(framework, tag, args.steps))
    elif args.only in ('both', 'reference'):
        runs['reference'] = run_reference(
            framework, corpus[1], site, args.steps, args.cell_timeout, gpu, tag=tag
        )
        if corpus_x5:
            runs['reference-x5'] = run_reference(
                framework,
                corpus_x5,
                site,
                args.steps,
                args.cell_timeout,
                gpu,
                data_only=True,
                tag=f'{tag}-x{CORPUS_COPIES}',
            )
    if args.only in ('both', 'ours'):
        if not ours_available(framework):
            log(
                f'ours-{framework}: {notebook_path(CHAPTER, framework)} or its d2l_extras '
                'module does not exist yet (run `python -m booktools sync`); skipped'
            )
        else:
            runs['ours'] = run_ours(
                framework, corpus[1], args.steps, args.cell_timeout, gpu, tag=tag
            )
            if corpus_x5:
                runs['ours-x5'] = run_ours(
                    framework,
                    corpus_x5,
                    args.steps,
                    args.cell_timeout,
                    gpu,
                    data_only=True,
                    tag=f'{tag}-x{CORPUS_COPIES}',
                )
    return runs


def main(argv=None):
    args = parse_args(argv)
    RUNS_DIR.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    log(f'machine: {info}')
    corpus = corpora(args.quick)
    log(f'offline corpus (WikiText-2 valid+test, NOT the official training split): {corpus[1]}')
    needs_library = args.only in ('both', 'reference') and not args.reuse_reference
    site = ensure_reference_library() if needs_library else None

    if args.gpu_only and not info['gpu']:
        raise SystemExit('bench: --gpu-only, but torch sees no GPU on this machine')
    devices = [] if args.gpu_only else ['cpu']
    if info['gpu'] and not args.no_gpu:
        devices.append('cuda')
    results = {}
    for device in devices:
        for framework in args.frameworks:
            if device == 'cuda' and framework == 'mxnet' and not mxnet_sees_gpu():
                log('mxnet: this MXNet build sees no GPU; no GPU runs for mxnet')
                continue
            results[(framework, device)] = framework_runs(
                framework, device == 'cuda', args, corpus, site
            )

    vocab_sizes = [
        run.vocab_size
        for runs in results.values()
        for key, run in runs.items()
        if not key.endswith('x5') and run.vocab_size
    ]
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
    (BENCH_DIR / 'results.json').write_text(
        json.dumps(
            {
                'machine': info,
                'steps': args.steps,
                'quick': args.quick,
                'bounds': bounds,
                'runs': {
                    f'{framework}/{device}': {
                        key: dataclasses.asdict(run) for key, run in runs.items()
                    }
                    for (framework, device), runs in results.items()
                },
            },
            indent=1,
        )
    )
    print()
    print(markdown)
    print()
    log(f'written: {BENCH_DIR / "results.md"} and {BENCH_DIR / "results.json"}')


if __name__ == '__main__':
    main()
