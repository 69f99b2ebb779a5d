"""The compute-bound limit: how many sentence pairs per second the matrix products allow.

The model counts the FLOPs of the matrix products of one pair of the chapter's small BERT and
divides by float32 matmul rates measured at the same shapes on this machine. Embeddings (table
lookups), softmax, LayerNorm and the like are not counted, so real training stays below it.
"""

import dataclasses
import json
import time

from . import BENCH_DIR
from .inputs import log

MATMUL_RATES_FILE = BENCH_DIR / 'matmul-rates.json'
#: forward + backward ~ 3x forward (the backward pass is two products of the same size)
TRAIN_FLOPS_PER_FORWARD = 3


@dataclasses.dataclass(frozen=True)
class Config:
    batch_size: int
    max_len: int
    num_hiddens: int
    ffn_num_hiddens: int
    num_heads: int
    num_layers: int

    @property
    def num_mlm_preds(self):
        """Masked positions per pair, padded to this count (15 % of max_len, as in d2l)."""
        return round(self.max_len * 0.15)


#: the chapter's pretraining configuration (the notebooks set it; tests check they agree)
CHAPTER_CONFIG = Config(
    batch_size=512, max_len=64, num_hiddens=128, ffn_num_hiddens=256, num_heads=2, num_layers=2
)


@dataclasses.dataclass(frozen=True)
class Product:
    """`count` matrix products (m x k) @ (k x n) for one pair; batched: one per pair and head."""

    name: str
    count: int
    batched: bool
    m: int
    k: int
    n: int

    @property
    def forward_flops(self):
        return self.count * 2 * self.m * self.k * self.n

    @property
    def key(self):
        """Names the shape in the cache of measured rates."""
        kind = 'bmm' if self.batched else 'mm'
        return f'{kind} {self.count}x {self.m}x{self.k} @ {self.k}x{self.n}'


def matmuls_per_pair(vocab_size, config=CHAPTER_CONFIG):
    """Forward matrix products of one sentence pair of the small BERT of `config`."""
    c = config
    head_size = c.num_hiddens // c.num_heads
    heads = c.num_heads * c.num_layers
    return [
        Product(
            'attention projections q,k,v,o',
            4 * c.num_layers,
            False,
            c.max_len,
            c.num_hiddens,
            c.num_hiddens,
        ),
        Product('attention scores Q K^T', heads, True, c.max_len, head_size, c.max_len),
        Product('attention weights x V', heads, True, c.max_len, c.max_len, head_size),
        Product('FFN dense 1', c.num_layers, False, c.max_len, c.num_hiddens, c.ffn_num_hiddens),
        Product('FFN dense 2', c.num_layers, False, c.max_len, c.ffn_num_hiddens, c.num_hiddens),
        Product('MLM hidden layer', 1, False, c.num_mlm_preds, c.num_hiddens, c.num_hiddens),
        Product(
            'MLM output layer (vocabulary)', 1, False, c.num_mlm_preds, c.num_hiddens, vocab_size
        ),
        Product('NSP hidden layer', 1, False, 1, c.num_hiddens, c.num_hiddens),
        Product('NSP output layer', 1, False, 1, c.num_hiddens, 2),
    ]


def limit_from_rates(products, gflops):
    """Pairs per second if every product ran at its rate `gflops[product.key]` (GFLOP/s)."""
    seconds_per_pair, forward_flops, rows = 0.0, 0, []
    for product in products:
        rate = gflops[product.key]
        seconds_per_pair += TRAIN_FLOPS_PER_FORWARD * product.forward_flops / (rate * 1e9)
        forward_flops += product.forward_flops
        rows.append(
            {
                'name': product.name,
                'count': product.count,
                'shape': f'{product.m}x{product.k} @ {product.k}x{product.n}'
                + (' (batched)' if product.batched else ''),
                'forward_mflop': product.forward_flops / 1e6,
                'gflops': rate,
            }
        )
    return {
        'rows': rows,
        'forward_mflop_per_pair': forward_flops / 1e6,
        'train_mflop_per_pair': TRAIN_FLOPS_PER_FORWARD * forward_flops / 1e6,
        'limit_pairs_per_s': 1 / seconds_per_pair,
    }


def measure_matmul_rate(torch, device, product, batch_size, min_seconds=0.7):
    """Best GFLOP/s of float32 torch.matmul for the shape one batch of pairs computes."""
    p = product
    if p.batched:  # one (m x k) @ (k x n) per pair and head, as torch.bmm over the batch
        a = torch.randn(batch_size * p.count, p.m, p.k, device=device)
        b = torch.randn(batch_size * p.count, p.k, p.n, device=device)
        flops = 2 * batch_size * p.count * p.m * p.k * p.n
    else:  # the rows of all pairs of the batch in one product
        a = torch.randn(batch_size * p.m, p.k, device=device)
        b = torch.randn(p.k, p.n, device=device)
        flops = 2 * batch_size * p.m * p.k * p.n

    def synchronize():
        if device.type == 'cuda':
            torch.cuda.synchronize()

    torch.matmul(a, b)  # warm-up
    synchronize()
    # Best of several short bursts: other processes on the machine only ever slow it down.
    best, bursts = 0.0, 7
    for _ in range(bursts):
        repeats, start = 0, time.perf_counter()
        while True:
            torch.matmul(a, b)
            repeats += 1
            synchronize()
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds / bursts:
                break
        best = max(best, flops * repeats / elapsed / 1e9)
    return best


def compute_bound(
    vocab_size, info, device_name='cpu', cache_file=MATMUL_RATES_FILE, config=CHAPTER_CONFIG
):
    """Measure matmul rates at the model's shapes; return the pairs/s limit and the details.

    Other processes on the machine can only slow the measurement down, so the best rate per
    shape seen on this machine so far (cached in `cache_file`, keyed by device, CPU/GPU model,
    cores, torch version and threads) is what the limit uses.
    """
    import torch

    device = torch.device(device_name)
    hardware = info['gpu'] if device.type == 'cuda' else f'{info["cpu"]} x{info["cores"]}'
    machine_key = (
        f'{device_name} | {hardware} | torch {torch.__version__} | '
        f'{torch.get_num_threads()} threads'
    )
    cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    best_rates = cache.setdefault(machine_key, {})
    products = matmuls_per_pair(vocab_size, config)
    rates_now = {}
    for product in products:  # equal shapes (scores and weights x V at head size max_len) once
        if product.key not in rates_now:
            rates_now[product.key] = measure_matmul_rate(torch, device, product, config.batch_size)
    for key, rate in rates_now.items():
        best_rates[key] = max(rate, best_rates.get(key, 0.0))
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cache_file.write_text(json.dumps(cache, indent=1))
    bound = limit_from_rates(products, best_rates)
    for row, product in zip(bound['rows'], products):
        row['gflops_now'] = rates_now[product.key]
    return {
        'device': device_name,
        'vocab_size': vocab_size,
        **bound,
        'torch_threads': torch.get_num_threads(),
        'cache': str(cache_file),
    }


def print_compute_bound(bound, config=CHAPTER_CONFIG):
    log(
        f'compute-bound limit on {bound["device"]} (vocabulary {bound["vocab_size"]}, '
        f"torch threads {bound['torch_threads']}): float32 matmul GFLOP/s at the model's shapes "
        f'(batch {config.batch_size}), measured now and best so far ({bound["cache"]})'
    )
    for row in bound['rows']:
        print(
            f'    {row["name"]:32s} {row["count"]:2d} x {row["shape"]:26s} '
            f'{row["forward_mflop"]:8.2f} MFLOP/pair  now {row["gflops_now"]:7.1f}  '
            f'best {row["gflops"]:7.1f} GFLOP/s'
        )
    print(
        f'    one pair: {bound["forward_mflop_per_pair"]:.1f} MFLOP forward, '
        f'~{bound["train_mflop_per_pair"]:.1f} MFLOP forward+backward (3x) '
        f'-> limit {bound["limit_pairs_per_s"]:.0f} pairs/s (at the best rates)',
        flush=True,
    )
