"""Start MXNet's `dist_sync` job on this machine: a scheduler, servers and workers on 127.0.0.1.

    python -m d2l_extras.mx_launch --num-workers 2 --num-servers 1 -- \\
        python -m d2l_extras.mx_pretrain --steps 50 --checkpoint checkpoints/bert.ckpt

Every process gets the DMLC_* variables of ps-lite; the scheduler and the servers are
`python -c 'import mxnet'` (MXNet starts them on import from DMLC_ROLE). Written by hand because
the `local` mode of MXNet's own tools/launch.py waits forever when a worker dies: this one stops
all processes and exits non-zero when one fails or when --timeout passes. The chapter
:numref:`sec_bert-distributed` (chapters/bert-distributed.md) explains it and the commands for
several machines.
"""

import argparse
import os
import socket
import subprocess
import sys
import time


def free_port(host='127.0.0.1'):
    """A TCP port on `host` that nothing listens on now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def launch(command, num_workers, num_servers=1, timeout=600, host='127.0.0.1'):
    """Run the job; return 0, or 1 after stopping every process if one failed or timed out."""
    env = dict(
        os.environ,
        DMLC_PS_ROOT_URI=host,
        DMLC_PS_ROOT_PORT=str(free_port(host)),
        DMLC_NUM_SERVER=str(num_servers),
        DMLC_NUM_WORKER=str(num_workers),
        DMLC_NODE_HOST=host,
    )
    ps_command = [sys.executable, '-c', 'import mxnet']
    roles = ['scheduler'] + ['server'] * num_servers + ['worker'] * num_workers
    procs = []
    try:
        for i, role in enumerate(roles):
            name = role if role == 'scheduler' else f'{role} {roles[:i].count(role)}'
            procs.append(
                (
                    name,
                    subprocess.Popen(
                        command if role == 'worker' else ps_command, env=dict(env, DMLC_ROLE=role)
                    ),
                )
            )
        deadline = time.monotonic() + timeout
        while True:
            for name, proc in procs:
                if proc.poll() not in (None, 0):
                    print(
                        f'mx_launch: {name} (pid {proc.pid}) exited with code '
                        f'{proc.returncode}; stopping the other processes',
                        file=sys.stderr,
                    )
                    return 1
            workers = [proc for name, proc in procs if name.startswith('worker')]
            if all(proc.returncode == 0 for proc in workers):
                # The servers and the scheduler end when the workers have left
                others = [proc for _, proc in procs if proc not in workers]
                for proc in others:
                    proc.wait(timeout=max(deadline - time.monotonic(), 10))
                return 0 if all(proc.returncode == 0 for proc in others) else 1
            if time.monotonic() > deadline:
                print(
                    f'mx_launch: timeout after {timeout} s; stopping all processes', file=sys.stderr
                )
                return 1
            time.sleep(0.2)
    except subprocess.TimeoutExpired:
        print(
            'mx_launch: the servers or the scheduler did not end after the workers; stopping them',
            file=sys.stderr,
        )
        return 1
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], usage='%(prog)s [options] -- command ...'
    )
    parser.add_argument('-n', '--num-workers', type=int, required=True)
    parser.add_argument('-s', '--num-servers', type=int, default=1)
    parser.add_argument(
        '--timeout',
        type=float,
        default=600,
        help='seconds before every process is stopped (default 600)',
    )
    parser.add_argument(
        'command', nargs=argparse.REMAINDER, help='the command of every worker, after --'
    )
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ['--'] else args.command
    if not command:
        parser.error(
            "give the workers' command after --, e.g. "
            '-- python -m d2l_extras.mx_pretrain --checkpoint bert.ckpt'
        )
    sys.exit(launch(command, args.num_workers, args.num_servers, args.timeout))


if __name__ == '__main__':
    main()
