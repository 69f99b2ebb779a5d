"""Data-parallel pretraining (sec_bert-distributed): two workers equal one worker, launchers
stop on a dead worker, checkpoints resume exactly and refuse damaged files, and the Animator
works headless. Every process runs on 127.0.0.1 with one thread and a timeout."""

import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from booktools.paths import ROOT

# launches of several processes, minutes on 2 cores: not in `make unit`
pytestmark = pytest.mark.slow

TIMEOUT = 240  # seconds for one launch: import, data, a few steps of a tiny BERT
TINY = [
    '--batch-size',
    '16',
    '--max-len',
    '32',
    '--num-hiddens',
    '32',
    '--ffn-num-hiddens',
    '64',
    '--num-heads',
    '2',
    '--num-layers',
    '1',
]


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run(command, timeout=TIMEOUT):
    env = dict(
        os.environ,
        OMP_NUM_THREADS='1',
        MPLBACKEND='Agg',
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]),
    )
    return subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT
    )


def torchrun(num_workers, args):
    return [
        sys.executable,
        '-m',
        'torch.distributed.run',
        f'--nproc_per_node={num_workers}',
        '--nnodes=1',
        '--rdzv-backend=c10d',
        f'--rdzv-endpoint=127.0.0.1:{free_port()}',
        *args,
    ]


def mx_launch(num_workers, args, timeout=TIMEOUT - 20):
    return [
        sys.executable,
        '-m',
        'd2l_extras.mx_launch',
        '--num-workers',
        str(num_workers),
        '--num-servers',
        '1',
        '--timeout',
        str(timeout),
        '--',
        sys.executable,
        *args,
    ]


def pretrain(framework, num_workers, checkpoint, *args):
    """Launch the chapter's workers; return their report lines."""
    if framework == 'pytorch':
        command = torchrun(
            num_workers,
            ['-m', 'd2l_extras.ddp_pretrain', *TINY, *args, '--checkpoint', str(checkpoint)],
        )
    else:
        command = mx_launch(
            num_workers,
            ['-m', 'd2l_extras.mx_pretrain', *TINY, *args, '--checkpoint', str(checkpoint)],
        )
    result = run(command)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    reports = sorted(line for line in result.stdout.splitlines() if line.startswith('worker'))
    assert len(reports) == num_workers, result.stdout
    return reports


def parameters(framework, checkpoint):
    if framework == 'pytorch':
        from d2l_extras import torch as d2l
    else:
        from d2l_extras import mxnet as d2l
    return d2l.checkpoint_parameters(checkpoint)


def max_relative_difference(a, b):
    assert sorted(a) == sorted(b)
    return max(np.linalg.norm(a[k] - b[k]) / max(np.linalg.norm(b[k]), 1e-12) for k in a)


def assert_same_parameters(a, b, rtol, atol):
    """Element-wise within rtol; atol for tensors whose gradient is 0 in exact arithmetic
    (the key bias of attention: softmax ignores it), which hold only rounding noise."""
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize('framework', ['pytorch', 'mxnet'])
def test_two_workers_with_half_batches_equal_one_worker(framework, tmp_path):
    # SGD: Adam divides a gradient by its own size, so a rounding difference in a gradient near
    # zero can grow to a difference of lr in the parameter (the chapter explains it)
    args = ['--steps', '3', '--dropout', '0', '--optimizer', 'sgd', '--lr', '0.5']
    two = pretrain(framework, 2, tmp_path / 'two.ckpt', *args)
    one = pretrain(framework, 1, tmp_path / 'one.ckpt', *args)
    # The workers saw different shards but hold the same parameters
    shard_losses = [line.split('; ')[0] for line in two]
    assert shard_losses[0].split(':')[1] != shard_losses[1].split(':')[1]
    assert len({line.split('; ')[2] for line in two}) == 1, two
    # ... and the global minibatches' losses of one worker
    assert {line.split('; ')[1] for line in two} == {one[0].split('; ')[1]}, one + two
    a = parameters(framework, tmp_path / 'two.ckpt')
    b = parameters(framework, tmp_path / 'one.ckpt')
    constant = {k: np.zeros_like(v) + v.mean() for k, v in a.items()}
    assert max_relative_difference(a, constant) > 1e-3  # not a stub: real parameters
    assert_same_parameters(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('framework', ['pytorch', 'mxnet'])
def test_resume_continues_the_same_run(framework, tmp_path):
    # PyTorch keeps dropout on: its checkpoint carries the random number generator. MXNet 1.9
    # cannot read its generator's state, so its dropout masks differ after resuming
    dropout = ['--dropout', '0.1' if framework == 'pytorch' else '0']
    pretrain(framework, 1, tmp_path / 'straight.ckpt', '--steps', '4', *dropout)
    pretrain(framework, 1, tmp_path / 'resumed.ckpt', '--steps', '2', *dropout)
    two_steps = parameters(framework, tmp_path / 'resumed.ckpt')
    pretrain(framework, 1, tmp_path / 'resumed.ckpt', '--steps', '4', *dropout)
    straight = parameters(framework, tmp_path / 'straight.ckpt')
    resumed = parameters(framework, tmp_path / 'resumed.ckpt')
    assert max_relative_difference(straight, two_steps) > 1e-4  # the 2 more steps did change it
    assert_same_parameters(resumed, straight, rtol=1e-6, atol=1e-8)


DYING_WORKERS = {
    'pytorch': """
        import os, torch, torch.distributed as dist
        dist.init_process_group('gloo')
        if dist.get_rank() == 1:
            os._exit(3)  # dies while rank 0 waits for it in all_reduce
        dist.all_reduce(torch.ones(1))
    """,
    'mxnet': """
        import os, mxnet as mx
        kv = mx.kv.create('dist_sync')
        if kv.rank == 1:
            os._exit(3)  # dies while rank 0 waits for it in push and pull
        kv.init(0, mx.nd.zeros(1))
        kv.push(0, mx.nd.ones(1))
        out = mx.nd.zeros(1)
        kv.pull(0, out=out)
        out.wait_to_read()
    """,
}


@pytest.mark.parametrize('framework', ['pytorch', 'mxnet'])
def test_a_dead_worker_stops_the_launcher(framework, tmp_path):
    script = tmp_path / 'dying.py'
    script.write_text(textwrap.dedent(DYING_WORKERS[framework]))
    if framework == 'pytorch':
        result = run(torchrun(2, [str(script)]), timeout=120)
        assert result.returncode != 0
        assert 'exitcode' in result.stderr and '3' in result.stderr, result.stderr[-2000:]
    else:
        result = run(mx_launch(2, [str(script)], timeout=100), timeout=120)
        assert result.returncode == 1
        # The scheduler numbers the workers, so the launcher's 'worker i' may be either
        assert 'mx_launch: worker' in result.stderr, result.stderr[-2000:]
        assert 'exited with code 3' in result.stderr, result.stderr[-2000:]


@pytest.fixture(scope='module')
def saved_checkpoint(tmp_path_factory):
    import torch

    from d2l_extras import torch as d2l

    path = tmp_path_factory.mktemp('ckpt') / 'bert.ckpt'
    vocab = d2l.Vocab(['a', 'b'])
    net = torch.nn.Linear(2, 2)
    d2l.save_checkpoint(path, net, torch.optim.Adam(net.parameters()), 7, vocab, {})
    return path


def test_checkpoint_round_trip(saved_checkpoint):
    from d2l_extras import torch as d2l

    state = d2l.load_checkpoint(saved_checkpoint)
    assert state['step'] == 7 and state['vocab'].idx_to_token == ['<unk>', 'a', 'b']
    assert not list(saved_checkpoint.parent.glob('*.tmp'))  # the temporary file was renamed


@pytest.mark.parametrize(
    'damage, message',
    [
        (lambda data: data[: len(data) // 2], 'truncated'),
        (lambda data: data[:-10] + bytes(10), 'corrupted'),
        (lambda data: b'PK' + data[2:], 'not a checkpoint'),
    ],
)
def test_damaged_checkpoint_is_refused(saved_checkpoint, tmp_path, damage, message):
    from d2l_extras import mxnet as mxd2l
    from d2l_extras import torch as d2l

    path = tmp_path / 'damaged.ckpt'
    path.write_bytes(damage(saved_checkpoint.read_bytes()))
    for module in (d2l, mxd2l):  # the same file format in both frameworks
        with pytest.raises(ValueError, match=message) as error:
            module.load_checkpoint(path)
        assert str(path) in str(error.value)


def test_crash_while_saving_keeps_the_old_checkpoint(saved_checkpoint, tmp_path, monkeypatch):
    from d2l_extras import torch as d2l

    path = tmp_path / 'bert.ckpt'
    path.write_bytes(saved_checkpoint.read_bytes())

    def crash(*args):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'fsync', crash)  # fails after writing part of the new file
    with pytest.raises(OSError):
        d2l._write_checkpoint_bytes(path, b'new' * 1000)
    assert d2l.load_checkpoint(path)['step'] == 7
    assert not list(tmp_path.glob('*.tmp'))  # the partial file was removed


def test_headless_script_plots_with_the_animator(tmp_path):
    script = tmp_path / 'plot.py'
    script.write_text(
        textwrap.dedent(f"""
        from d2l_extras import torch as d2l
        animator = d2l.Animator(xlabel='step', ylabel='loss', xlim=[1, 3], legend=['mlm', 'nsp'])
        for step in range(3):
            animator.add(step + 1, (3.0 - step, 0.7))
        animator.fig.savefig({str(tmp_path / 'plot.png')!r})
        print(list(animator.lines[0].get_ydata()))
    """)
    )
    result = run([sys.executable, str(script)], timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == '[3.0, 2.0, 1.0]'  # no '<Figure ...>' lines in a script
    assert (tmp_path / 'plot.png').stat().st_size > 1000


@pytest.mark.parametrize('framework', ['mxnet', 'torch'])
def test_headless_notebook_plots_with_the_animator(framework):
    # A notebook executed with MPLBACKEND=Agg (nbclient, CI): d2l 1.0.3's Animator ended in
    # "cannot import name 'backend2gui'" there.
    import nbclient
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(f'from d2l_extras import {framework} as d2l'),
        nbformat.v4.new_code_cell(
            "animator = d2l.Animator(xlabel='step', ylabel='loss', xlim=[1, 3])\n"
            'for step in range(3):\n'
            '    animator.add(step + 1, 3.0 - step)\n'
            'print(list(animator.lines[0].get_ydata()))'
        ),
    ]
    env = dict(os.environ, MPLBACKEND='Agg', OMP_NUM_THREADS='1')
    nbclient.NotebookClient(nb, timeout=TIMEOUT, kernel_name='python3').execute(env=env, cwd=ROOT)
    printed = [o.text for o in nb.cells[1].outputs if o.get('name') == 'stdout']
    assert printed == ['[3.0, 2.0, 1.0]\n']
