"""One worker of BERT pretraining with DistributedDataParallel, started by torchrun.

    torchrun --standalone --nproc_per_node=2 -m d2l_extras.ddp_pretrain --steps 50

The functions it calls, and the commands for several machines, are explained in the chapter
:numref:`sec_bert-distributed` (chapters/bert-distributed.md).
"""

import argparse


def parse_args(argv=None, description=__doc__):
    """The command line of both frameworks' workers."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument(
        '--checkpoint',
        required=True,
        help='checkpoint file: continued from if it exists, saved by rank 0',
    )
    parser.add_argument('--steps', type=int, default=50, help='train until this step')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=512,
        help='global minibatch: the examples of all workers in one step',
    )
    parser.add_argument('--max-len', type=int, default=64)
    parser.add_argument('--lr', type=float, default=0.01)
    parser.add_argument('--optimizer', choices=['adam', 'sgd'], default='adam')
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='the same on every worker: examples, shuffling, initial weights',
    )
    parser.add_argument('--save-every', type=int, default=None, help='steps between saves')
    parser.add_argument('--dropout', type=float, default=0.2)
    parser.add_argument('--num-hiddens', type=int, default=128)
    parser.add_argument('--ffn-num-hiddens', type=int, default=256)
    parser.add_argument('--num-heads', type=int, default=2)
    parser.add_argument('--num-layers', type=int, default=2)
    return parser.parse_args(argv)


def report(rank, num_workers, shard_losses, global_losses, pairs_per_sec, param_sum):
    """One line per worker, in the same format in both frameworks."""
    print(
        f'worker {rank}/{num_workers}: shard loss MLM {shard_losses[0]:.4f} '
        f'NSP {shard_losses[1]:.4f}; global minibatch loss MLM {global_losses[0]:.4f} '
        f'NSP {global_losses[1]:.4f}; parameter sum {param_sum:.6f}; '
        f'{pairs_per_sec:.1f} pairs/s',
        flush=True,
    )


def main(argv=None):
    args = parse_args(argv)
    import torch
    import torch.distributed as dist

    from d2l_extras import torch as d2l

    rank, num_workers, device = d2l.init_distributed()
    try:
        torch.manual_seed(args.seed)  # Same initial weights and dropout masks everywhere
        train_iter, sampler, vocab = d2l.load_data_wiki_shard(
            args.batch_size, args.max_len, rank, num_workers, args.seed
        )
        config = d2l.bert_config(
            args.num_hiddens, args.ffn_num_hiddens, args.num_heads, args.num_layers, args.dropout
        )
        net = d2l.BERTModel(len(vocab), **config)
        shard, whole, speed = d2l.train_bert_distributed(
            train_iter,
            sampler,
            net,
            vocab,
            config,
            device,
            args.steps,
            args.checkpoint,
            args.lr,
            args.save_every,
            args.optimizer,
        )
        param_sum = sum(p.detach().double().sum().item() for p in net.parameters())
        report(rank, num_workers, shard, whole, speed, param_sum)
    finally:
        dist.destroy_process_group()


if __name__ == '__main__':
    main()
