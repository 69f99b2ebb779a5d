"""Tests of the memory estimator of chapters/bert.md: estimate_bert_memory,
available_memory and check_bert_fits.

The estimate is checked against real models (parameter counts, both frameworks) and against
the peak memory of a real training step on the CPU (both frameworks). The peak is measured
in a fresh process from the kernel's resident-set high-water mark (VmHWM in
/proc/self/status, reset through /proc/self/clear_refs), which counts every page the step
touches, whatever allocator the framework uses.
"""

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip('torch')
mx = pytest.importorskip('mxnet')
from mxnet import init, npx  # noqa: E402

npx.set_np()

from d2l_extras import mxnet as d2l_mx  # noqa: E402
from d2l_extras import torch as d2l_torch  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
SMALL = dict(
    vocab_size=20000, num_hiddens=128, ffn_num_hiddens=256, num_heads=2, num_layers=2, max_len=1000
)
MID = dict(
    vocab_size=8000, num_hiddens=512, ffn_num_hiddens=2048, num_heads=8, num_layers=4, max_len=512
)
BERT_LARGE_512 = dict(
    vocab_size=30000,
    num_hiddens=1024,
    ffn_num_hiddens=4096,
    num_heads=16,
    num_layers=24,
    batch_size=512,
    max_len=512,
)


def torch_param_count(vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_layers, max_len):
    h = num_hiddens
    net = d2l_torch.BERTModel(
        vocab_size,
        h,
        [h],
        h,
        ffn_num_hiddens,
        num_heads,
        num_layers,
        0.1,
        max_len=max_len,
        key_size=h,
        query_size=h,
        value_size=h,
        hid_in_features=h,
        mlm_in_features=h,
        nsp_in_features=h,
    )
    return sum(p.numel() for p in net.parameters())


def mxnet_param_count(vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_layers, max_len):
    net = d2l_mx.BERTModel(
        vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_layers, 0.1, max_len=max_len
    )
    net.initialize(init.Zero())  # every shape is known without a forward pass
    return sum(p.data().size for p in net.collect_params().values())


@pytest.mark.parametrize('config', [SMALL, MID], ids=['small', 'mid'])
@pytest.mark.parametrize('count', [torch_param_count, mxnet_param_count], ids=['pytorch', 'mxnet'])
def test_parameter_count_matches_the_real_model(config, count):
    estimate = d2l_torch.estimate_bert_memory(**config, batch_size=1)
    real = count(**config)
    assert abs(estimate.num_parameters - real) <= 0.01 * real, (estimate.num_parameters, real)
    assert estimate['parameters'] == 4 * estimate.num_parameters
    assert estimate['gradients'] == estimate['parameters']
    assert estimate['adam_states'] == 2 * estimate['parameters']


def test_estimate_is_the_same_code_in_both_modules():
    config = dict(SMALL, batch_size=64, max_len=128)
    assert dict(d2l_torch.estimate_bert_memory(**config)) == dict(
        d2l_mx.estimate_bert_memory(**config)
    )


def test_how_the_terms_grow():
    base = d2l_torch.estimate_bert_memory(**dict(SMALL, batch_size=32, max_len=128))
    longer = d2l_torch.estimate_bert_memory(**dict(SMALL, batch_size=32, max_len=256))
    bigger_batch = d2l_torch.estimate_bert_memory(**dict(SMALL, batch_size=64, max_len=128))
    assert longer['attention_scores'] == 4 * base['attention_scores']  # max_len ** 2
    assert longer['layer_activations'] == 2 * base['layer_activations']
    assert bigger_batch.activations == 2 * base.activations
    assert bigger_batch['parameters'] == base['parameters']
    half = d2l_torch.estimate_bert_memory(
        **dict(SMALL, batch_size=32, max_len=128), bytes_per_value=2
    )
    assert half.total * 2 == base.total
    assert base.total == sum(base.values())
    assert base.dominant == max(base, key=base.get)


def test_pretty_print_names_every_term_and_the_largest():
    estimate = d2l_torch.estimate_bert_memory(**BERT_LARGE_512)
    text = str(estimate)
    assert estimate.dominant == 'attention_scores'
    for label in estimate.LABELS.values():
        assert label in text
    largest_line = next(line for line in text.splitlines() if '<- largest' in line)
    assert estimate.LABELS['attention_scores'] in largest_line
    assert d2l_torch.format_bytes(estimate.total) in text
    assert d2l_torch.format_bytes(1536) == '1.5 KiB'
    assert d2l_torch.format_bytes(3 * 2**40) == '3.0 TiB'


# ------------------------------------------------------------------ against a real step

MEASURE = textwrap.dedent("""
    import re, sys, json
    framework, V, H, F, h, L, B, T = sys.argv[1], *map(int, sys.argv[2:])
    P = round(T * 0.15)

    def status_kib(field):
        text = open('/proc/self/status').read()
        return int(re.search(field + r':\\s+(\\d+) kB', text).group(1))

    if framework == 'pytorch':
        import torch
        from torch import nn
        from d2l_extras import torch as d2l
        torch.manual_seed(0)
        net = d2l.BERTModel(V, H, [H], H, F, h, L, 0.1, max_len=T, key_size=H,
                            query_size=H, value_size=H, hid_in_features=H,
                            mlm_in_features=H, nsp_in_features=H)
        loss = nn.CrossEntropyLoss(reduction='none')

        def batch(b):
            tokens = torch.randint(0, V, (b, T))
            return (tokens, torch.zeros_like(tokens), torch.full((b,), T),
                    torch.randint(1, T, (b, P)), torch.randint(0, V, (b, P)),
                    torch.randint(0, 2, (b,)))

        def forward_backward(data):
            tokens, segments, valid_lens, positions, mlm_y, nsp_y = data
            _, mlm_y_hat, nsp_y_hat = net(tokens, segments, valid_lens, positions)
            l = (loss(mlm_y_hat.reshape(-1, V), mlm_y.reshape(-1)).mean()
                 + loss(nsp_y_hat, nsp_y).mean())
            l.backward()
    else:
        from mxnet import autograd, gluon, init, np, npx
        npx.set_np()
        from d2l_extras import mxnet as d2l
        net = d2l.BERTModel(V, H, F, h, L, 0.1, max_len=T)
        net.initialize(init.Xavier())
        net.hybridize()
        loss = gluon.loss.SoftmaxCELoss()

        def batch(b):
            tokens = np.random.randint(0, V, (b, T)).astype('int32')
            return (tokens, np.zeros_like(tokens), np.full((b,), T),
                    np.random.randint(1, T, (b, P)).astype('int32'),
                    np.random.randint(0, V, (b, P)).astype('int32'),
                    np.random.randint(0, 2, (b,)).astype('int32'))

        def forward_backward(data):
            tokens, segments, valid_lens, positions, mlm_y, nsp_y = data
            with autograd.record():
                _, mlm_y_hat, nsp_y_hat = net(tokens, segments, valid_lens, positions)
                l = (loss(mlm_y_hat.reshape(-1, V), mlm_y.reshape(-1)).mean()
                     + loss(nsp_y_hat, nsp_y).mean())
            l.backward()
            npx.waitall()

    forward_backward(batch(2))  # build caches and lazily created state
    data = batch(B)
    before = status_kib('VmRSS')
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset the peak (VmHWM) to the current resident size
    forward_backward(data)
    print(json.dumps({'peak_bytes': (status_kib('VmHWM') - before) * 1024}))
""")


def measure_step_peak(framework, V, H, F, h, L, B, T):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    result = subprocess.run(
        [sys.executable, '-c', MEASURE, framework, *map(str, (V, H, F, h, L, B, T))],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return int(result.stdout.strip().splitlines()[-1].split(':')[1].strip(' }'))


def peak_measurement_available():
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return 'VmHWM' in pathlib.Path('/proc/self/status').read_text()
    except OSError:
        return False


@pytest.mark.skipif(
    not peak_measurement_available(),
    reason='needs Linux /proc/self/clear_refs to reset the peak RSS',
)
@pytest.mark.slow
@pytest.mark.parametrize('framework', ['pytorch', 'mxnet'])
def test_activation_estimate_within_factor_two_of_measured_peak(framework):
    # Every position is valid, as the estimate assumes; activations dominate the step
    V, H, F, h, L, B, T = 2000, 128, 256, 2, 2, 64, 64
    measured = measure_step_peak(framework, V, H, F, h, L, B, T)
    estimate = d2l_torch.estimate_bert_memory(V, H, F, h, L, B, T)
    # The step's peak holds the activations plus the gradients created by backward
    predicted = estimate.activations + estimate['gradients']
    assert predicted / 2 <= measured <= 2 * predicted, (
        f'{framework}: measured {measured / 2**20:.1f} MiB, estimated {predicted / 2**20:.1f} MiB'
    )


# ------------------------------------------------------------------ available memory, fits


def test_available_memory_of_cpu_devices():
    ram = d2l_torch.available_memory()
    assert isinstance(ram, int) and ram > 0
    for device in ('cpu', torch.device('cpu'), mx.cpu(), mx.cpu_pinned()):
        assert abs(d2l_torch.available_memory(device) - ram) < 0.25 * ram
    with pytest.raises(ValueError, match='unknown device'):
        d2l_torch.available_memory('tpu:0')
    with pytest.raises(TypeError, match='pass one device'):
        d2l_torch.available_memory([mx.cpu()])


def test_check_bert_fits_refuses_bert_large_before_allocating():
    import psutil

    rss_before = psutil.Process().memory_info().rss
    with pytest.raises(MemoryError) as error:
        d2l_mx.check_bert_fits(**BERT_LARGE_512)
    message = str(error.value)
    assert 'attention_scores' in message and 'max_len' in message
    assert 'GiB' in message and 'free on' in message
    # Nothing was allocated: the check is arithmetic only
    assert psutil.Process().memory_info().rss - rss_before < 50 * 2**20
    with pytest.raises(MemoryError):
        d2l_torch.check_bert_fits(**BERT_LARGE_512, device='cpu')


def test_check_bert_fits_accepts_the_small_config():
    config = dict(SMALL, batch_size=512, max_len=64)
    estimate = d2l_torch.check_bert_fits(**config)
    assert estimate.total < d2l_torch.available_memory()
    assert estimate == d2l_mx.check_bert_fits(**config, device=mx.cpu())


@pytest.mark.parametrize('d2l', [d2l_mx, d2l_torch], ids=['mxnet', 'pytorch'])
def test_check_bert_fits_advice_follows_the_budget(d2l, monkeypatch):
    config = dict(SMALL, batch_size=512, max_len=64)
    estimate = d2l.estimate_bert_memory(**config)
    fixed = estimate['parameters'] + estimate['gradients'] + estimate['adam_states']
    # Room for the model and a quarter of the batch's activations
    monkeypatch.setattr(
        d2l, 'available_memory', lambda device=None: fixed + estimate.activations // 4
    )
    with pytest.raises(MemoryError, match=r'batch_size <= 128 would fit'):
        d2l.check_bert_fits(**config)
    assert d2l.check_bert_fits(**dict(config, batch_size=128)).total <= (
        fixed + estimate.activations // 4
    )
    # Not even the model fits
    monkeypatch.setattr(d2l, 'available_memory', lambda device=None: fixed // 2)
    with pytest.raises(MemoryError) as error:
        d2l.check_bert_fits(**config)
    assert 'would fit' not in str(error.value) and 'alone need' in str(error.value)
