"""Train the small BERT that :numref:`sec_bert-pretraining` loads (d2l.book_checkpoint).

    python -m d2l_extras.pretrain --framework pytorch
    python -m d2l_extras.pretrain --framework mxnet

The recipe (Adam, linear warmup and decay, dynamic masking, 10 % of the paragraphs held out) and
the measures it records are the chapter's functions (chapters/bert-pretraining.md). The checkpoint
holds the parameters (no optimizer state) and, under 'info', how it was made: the command, the
commit, the machine, the time, the loss of every step, the held-out measures every
`--eval-every` steps and the context similarities at a few steps. `--stop-after N` trains the
first N steps of the same run (the schedule still plans `--steps`): the provenance test compares
them with the recorded losses.
"""

import argparse
import importlib.metadata
import math
import os
import pathlib
import platform
import subprocess
import time

CONTEXT_STEPS = (0, 50, 200, 500, 1000, 1500)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--framework', choices=['mxnet', 'pytorch'], required=True)
    parser.add_argument('--out', help='checkpoint file (default: the one the chapter loads)')
    parser.add_argument('--steps', type=int, default=2000)
    parser.add_argument('--stop-after', type=int, default=None)
    parser.add_argument('--lr', type=float, default=3e-3)
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--max-len', type=int, default=64)
    parser.add_argument('--dropout', type=float, default=0.1)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--eval-every', type=int, default=100)
    args = parser.parse_args(argv)
    for name in ('steps', 'batch_size', 'eval_every'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be at least 1')
    if args.stop_after is not None and not 1 <= args.stop_after <= args.steps:
        parser.error(f'--stop-after must lie in [1, --steps={args.steps}]')
    return args


def _machine():
    """The CPU model, the number of cores and the operating system, in one line."""
    model = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                model = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    return f'{model}, {os.cpu_count()} cores, {platform.system()}'


def _commit():
    """The commit of the repository this module lies in, '+dirty' if it has changes."""
    root = pathlib.Path(__file__).resolve().parent.parent

    def git(*args):
        return subprocess.run(
            ['git', *args], cwd=root, capture_output=True, text=True, timeout=30
        ).stdout.strip()

    try:
        commit = git('rev-parse', 'HEAD')
        dirty = git('status', '--porcelain', '--untracked-files=no')
    except (OSError, subprocess.SubprocessError):
        return 'unknown'
    return (commit or 'unknown') + ('+dirty' if dirty else '')


def _framework(name):
    """The chapter library of a framework and the framework's version."""
    # Import d2l_extras before the framework: it sets MXNet's thread count, which MXNet reads
    # once, when it is imported
    if name == 'pytorch':
        from d2l_extras import torch as d2l
    else:
        from d2l_extras import mxnet as d2l
    return d2l, importlib.metadata.version('torch' if name == 'pytorch' else 'mxnet')


def _new_bert(d2l, framework, vocab_size, config, seed):
    """A new BERT (of the library `d2l`) with the initial weights that `seed` gives."""
    if framework == 'pytorch':
        import torch

        torch.manual_seed(seed)  # initial weights and dropout masks
        return d2l.BERTModel(vocab_size, **config)
    import mxnet as mx

    mx.random.seed(seed)
    net = d2l.BERTModel(vocab_size, **config)
    net.initialize(mx.init.Xavier())  # as in the chapter
    return net


def command_line(args):
    """The command that trains this run, without --out and --stop-after."""
    options = {k: v for k, v in vars(args).items() if k not in ('out', 'stop_after')}
    return 'python -m d2l_extras.pretrain ' + ' '.join(
        f'--{k.replace("_", "-")} {v}' for k, v in options.items()
    )


def train(args):
    """Train as the arguments say; return (net, vocab, config, info)."""
    d2l, version = _framework(args.framework)
    commit = _commit()  # the code this run starts with
    paragraphs = d2l._read_wiki(d2l.wikitext2_dir())
    # The chapter's vocabulary (load_data_wiki makes it the same way, from the same paragraphs)
    vocab, _ = d2l._make_pretraining_arrays(paragraphs, args.max_len)
    train_paragraphs, heldout_paragraphs = d2l.split_paragraphs(paragraphs)
    heldout_iter = d2l.make_wiki_iter(heldout_paragraphs, 512, args.max_len, vocab, shuffle=False)
    probe = next(iter(heldout_iter))  # the batch whose encodings are compared
    config = d2l.bert_config(dropout=args.dropout)
    net = _new_bert(d2l, args.framework, len(vocab), config, args.seed)
    history = {'step': [], 'mlm_loss': [], 'nsp_loss': []}
    heldout, context = [], []

    def measure(step):
        if step % args.eval_every == 0 or step == args.steps:
            heldout.append(dict(step=step, **d2l.evaluate_bert(net, heldout_iter, len(vocab))))
        if step in CONTEXT_STEPS or step == args.steps:
            same, different = d2l.context_similarities(*d2l.token_encodings(net, probe, vocab))
            context.append({'step': step, 'same word': same, 'different words': different})

    def on_step(step, mlm_l, nsp_l):
        history['step'].append(step)
        history['mlm_loss'].append(mlm_l)
        history['nsp_loss'].append(nsp_l)
        if not (math.isfinite(mlm_l) and math.isfinite(nsp_l)):
            raise FloatingPointError(f'the loss is {mlm_l}, {nsp_l} at step {step}')
        measure(step)
        if step % args.eval_every == 0:
            print(
                f'step {step}: loss MLM {mlm_l:.3f} NSP {nsp_l:.3f}; held-out {heldout[-1]}',
                flush=True,
            )

    start = time.time()
    measure(0)
    step = d2l.pretrain_bert(
        net,
        train_paragraphs,
        vocab,
        args.steps,
        lr=args.lr,
        batch_size=args.batch_size,
        max_len=args.max_len,
        seed=args.seed,
        stop_at=args.stop_after,
        on_step=on_step,
    )
    seconds = time.time() - start
    info = {
        'command': command_line(args),
        'commit': commit,
        'machine': _machine(),
        'framework': f'{args.framework} {version}',
        'python': platform.python_version(),
        'date': time.strftime('%Y-%m-%d', time.gmtime()),
        'seconds': round(seconds, 1),
        'steps': step,
        'recipe': {k: v for k, v in vars(args).items() if k != 'out'},
        'history': history,
        'heldout': heldout,
        'context': context,
    }
    return net, vocab, config, info


def main(argv=None):
    args = parse_args(argv)
    net, vocab, config, info = train(args)
    d2l, _ = _framework(args.framework)
    out = pathlib.Path(args.out) if args.out else d2l.book_checkpoint(args.framework)
    d2l.save_checkpoint(out, net, None, info['steps'], vocab, config, info=info)
    print(f'{info["steps"]} steps in {info["seconds"]:.0f} s; saved {out}', flush=True)


if __name__ == '__main__':
    main()
