"""Pretraining throughput with 1 and 2 worker processes on this machine (sec_bert-distributed).

    python -m benchmarks.scaling [--frameworks pytorch mxnet] [--steps 20] [--batch-size 128]

Each run launches the chapter's workers (``torchrun`` + ``d2l_extras.ddp_pretrain``, or
``d2l_extras.mx_launch`` + ``d2l_extras.mx_pretrain``) on 127.0.0.1 with a fresh checkpoint and
the chapter's model, and reads the pairs/s that every worker prints (its own sentence pairs
over the time of its training steps, communication included; startup and data preparation are
not counted). The throughput of a run is the sum over its workers. It measures and prints; it
judges nothing.
"""

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile

import psutil

from booktools.corpus import use_offline_corpus
from booktools.paths import ROOT

RATE = re.compile(r'^worker (\d+)/(\d+):.*; ([\d.]+) pairs/s$')


def machine():
    cpu = platform.processor() or 'unknown CPU'
    try:
        for line in subprocess.run(['lscpu'], capture_output=True, text=True).stdout.splitlines():
            if line.startswith('Model name:'):
                cpu = line.split(':', 1)[1].strip()
    except FileNotFoundError:
        pass
    import torch

    gpus = ', '.join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    return (
        f'{cpu}, {psutil.cpu_count(logical=False)} cores ({psutil.cpu_count()} logical), '
        f'{psutil.virtual_memory().total / 2**30:.0f} GiB, GPU: {gpus or "none"}; '
        f'Python {platform.python_version()}, torch {torch.__version__}'
    )


def run(framework, num_workers, threads, steps, batch_size, timeout=900):
    """Pairs/s of every worker of one launch."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            '--batch-size',
            str(batch_size),
            '--steps',
            str(steps),
            '--checkpoint',
            os.path.join(tmp, 'bert.ckpt'),
        ]
        if framework == 'pytorch':
            command = [
                sys.executable,
                '-m',
                'torch.distributed.run',
                '--standalone',
                f'--nproc_per_node={num_workers}',
                '-m',
                'd2l_extras.ddp_pretrain',
                *args,
            ]
        else:
            command = [
                sys.executable,
                '-m',
                'd2l_extras.mx_launch',
                '--num-workers',
                str(num_workers),
                '--',
                sys.executable,
                '-m',
                'd2l_extras.mx_pretrain',
                *args,
            ]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MPLBACKEND='Agg')
        result = subprocess.run(
            command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout
        )
    if result.returncode != 0:
        raise RuntimeError(
            f'{framework} with {num_workers} workers failed:\n{result.stderr[-2000:]}'
        )
    return [float(m.group(3)) for m in map(RATE.match, result.stdout.splitlines()) if m]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frameworks', nargs='+', default=['pytorch', 'mxnet'])
    parser.add_argument('--steps', type=int, default=20)
    parser.add_argument('--batch-size', type=int, default=128, help='global minibatch')
    args = parser.parse_args(argv)
    use_offline_corpus()
    print(f'Machine: {machine()}')
    print(
        f'Model of sec_bert-pretraining (2 layers, 128 hidden units), global batch '
        f'{args.batch_size}, max_len 64, {args.steps} steps, CPU; corpus: WikiText-2 '
        f'validation + test splits (not the official training split).'
    )
    print(f'load average (1 min) at start: {os.getloadavg()[0]:.2f}')
    print()
    print('| framework | processes | threads per process | pairs/s (sum of workers) | per worker |')
    print('| --- | ---: | ---: | ---: | --- |')
    cores = psutil.cpu_count(logical=False) or 1
    for framework in args.frameworks:
        for num_workers, threads in ((1, cores), (1, max(cores // 2, 1)), (2, max(cores // 2, 1))):
            rates = run(framework, num_workers, threads, args.steps, args.batch_size)
            print(
                f'| {framework} | {num_workers} | {threads} | {sum(rates):,.1f} | '
                f'{", ".join(f"{r:.1f}" for r in rates)} |',
                flush=True,
            )
    print()
    print(f'load average (1 min) at end: {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
    main()
