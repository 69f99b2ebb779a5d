"""One worker of BERT pretraining with MXNet's `dist_sync` KVStore, started by mx_launch.

    python -m d2l_extras.mx_launch --num-workers 2 -- python -m d2l_extras.mx_pretrain --steps 50

The functions it calls, and the commands for several machines, are explained in the chapter
:numref:`sec_bert-distributed` (chapters/bert-distributed.md).
"""

from d2l_extras.ddp_pretrain import parse_args, report


def main(argv=None):
    args = parse_args(argv, __doc__)
    import mxnet as mx
    from mxnet import init

    from d2l_extras import mxnet as d2l

    kv = mx.kv.create('dist_sync')
    mx.random.seed(args.seed)  # Rank 0's initial weights are copied to every worker
    train_iter, sampler, vocab = d2l.load_data_wiki_shard(
        args.batch_size, args.max_len, kv.rank, kv.num_workers, args.seed
    )
    config = d2l.bert_config(
        args.num_hiddens, args.ffn_num_hiddens, args.num_heads, args.num_layers, args.dropout
    )
    net = d2l.BERTModel(len(vocab), **config)
    net.initialize(init.Xavier())
    shard, whole, speed = d2l.train_bert_distributed(
        train_iter,
        sampler,
        net,
        vocab,
        config,
        kv,
        args.steps,
        args.checkpoint,
        args.lr,
        args.save_every,
        args.optimizer,
    )
    param_sum = sum(float(p.data().astype('float64').sum()) for p in net.collect_params().values())
    report(kv.rank, kv.num_workers, shard, whole, speed, param_sum)


if __name__ == '__main__':
    main()
