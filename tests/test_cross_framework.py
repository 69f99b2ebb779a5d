"""The MXNet and PyTorch BERTModel of chapters/bert.md are the same network.

We build both with the same small configuration, give the MXNet model random weights (every
parameter, including layer-norm scales and biases, so that no mix-up can hide behind ones
and zeros), copy them into the PyTorch model by name, and compare the three outputs on the
same padded batch. A bug in either implementation (masking, packing, head splitting, a
swapped layer) makes the outputs differ.
"""

import re

import numpy as onp
import pytest

torch = pytest.importorskip('torch')
mx = pytest.importorskip('mxnet')
from mxnet import init, np, npx  # noqa: E402

npx.set_np()

from d2l_extras import mxnet as d2l_mx  # noqa: E402
from d2l_extras import torch as d2l_torch  # noqa: E402

VOCAB, HIDDENS, FFN, HEADS, LAYERS, MAX_LEN = 40, 24, 48, 3, 2, 16
ATOL = 1e-4


def mxnet_model(hybridize=False):
    mx.random.seed(7)
    net = d2l_mx.BERTModel(VOCAB, HIDDENS, FFN, HEADS, LAYERS, dropout=0.3, max_len=MAX_LEN)
    net.initialize(init.Xavier())
    rng = onp.random.default_rng(7)
    for param in net.collect_params().values():
        param.set_data(np.array(rng.normal(0, 0.3, param.shape), dtype='float32'))
    net.hybridize(active=hybridize)  # BERTModel hybridizes itself; undo it if asked
    return net


def torch_model():
    return d2l_torch.BERTModel(
        VOCAB,
        HIDDENS,
        [HIDDENS],
        HIDDENS,
        FFN,
        HEADS,
        LAYERS,
        dropout=0.3,
        max_len=MAX_LEN,
        key_size=HIDDENS,
        query_size=HIDDENS,
        value_size=HIDDENS,
        hid_in_features=HIDDENS,
        mlm_in_features=HIDDENS,
        nsp_in_features=HIDDENS,
    )


def torch_name(mxnet_name):
    """Structural MXNet parameter name -> PyTorch parameter name."""
    name = re.sub(r'\.gamma$', '.weight', mxnet_name)  # LayerNorm scale
    name = re.sub(r'\.beta$', '.bias', name)  # LayerNorm shift
    name = re.sub(r'^hidden\.', 'hidden.0.', name)  # Dense(tanh) = Linear + Tanh
    # MaskLM: Dense(relu), LayerNorm, Dense  vs  Linear, ReLU, LayerNorm, Linear
    name = re.sub(
        r'^mlm\.mlp\.(\d)\.', lambda m: f'mlm.mlp.{ {0: 0, 1: 2, 2: 3}[int(m.group(1))] }.', name
    )
    return name


def copy_mxnet_to_torch(mx_net, torch_net):
    mx_params = mx_net._collect_params_with_prefix()
    torch_params = dict(torch_net.named_parameters())
    mapped = {torch_name(name): name for name in mx_params}
    assert len(mapped) == len(mx_params), 'two MXNet parameters map to one name'
    assert set(mapped) == set(torch_params), (
        f'unmatched: mxnet {sorted(set(mapped) - set(torch_params))}, '
        f'pytorch {sorted(set(torch_params) - set(mapped))}'
    )
    with torch.no_grad():
        for t_name, m_name in mapped.items():
            value = mx_params[m_name].data().asnumpy()
            # Gluon's Dense stores its weight as (out, in), like nn.Linear: no transpose
            assert tuple(torch_params[t_name].shape) == value.shape, t_name
            torch_params[t_name].copy_(torch.from_numpy(value))


def padded_batch(seed=0, num_steps=MAX_LEN, valid=(16, 5, 9, 1)):
    rng = onp.random.default_rng(seed)
    valid = onp.array(valid)
    tokens = rng.integers(4, VOCAB, (len(valid), num_steps))
    segments = onp.zeros_like(tokens)
    for i, length in enumerate(valid):
        tokens[i, length:] = 0  # <pad>
        segments[i, length // 2 : length] = 1
    # Predictions at valid positions; a padded prediction slot points at position 0
    pred_positions = onp.stack(
        [
            onp.sort(rng.choice(onp.arange(length), 3)) if length > 1 else onp.zeros(3, int)
            for length in valid
        ]
    )
    return tokens, segments, valid, pred_positions


def run_both(mx_net, torch_net, tokens, segments, valid, pred_positions):
    mx_out = mx_net(
        np.array(tokens, dtype='int32'),
        np.array(segments, dtype='int32'),
        None if valid is None else np.array(valid, dtype='float32'),
        np.array(pred_positions, dtype='int32'),
    )
    torch_net.eval()
    with torch.no_grad():
        torch_out = torch_net(
            torch.tensor(tokens),
            torch.tensor(segments),
            None if valid is None else torch.tensor(valid),  # int64
            torch.tensor(pred_positions),
        )
    return [y.asnumpy() for y in mx_out], [y.numpy() for y in torch_out]


@pytest.fixture(scope='module')
def models():
    mx_net = mxnet_model()
    torch_net = torch_model()
    copy_mxnet_to_torch(mx_net, torch_net)
    return mx_net, torch_net


def test_parameter_names_map_one_to_one(models):
    mx_net, torch_net = models
    names = [torch_name(n) for n in mx_net._collect_params_with_prefix()]
    assert sorted(names) == sorted(n for n, _ in torch_net.named_parameters())


@pytest.mark.parametrize('hybridize', [False, True], ids=['imperative', 'hybridized'])
def test_same_outputs_on_a_padded_batch(models, hybridize):
    _, torch_net = models
    mx_net = mxnet_model(hybridize)  # same seeds -> same weights as the copied ones
    (encoded_mx, mlm_mx, nsp_mx), (encoded_pt, mlm_pt, nsp_pt) = run_both(
        mx_net, torch_net, *padded_batch()
    )
    assert encoded_mx.shape == encoded_pt.shape == (4, MAX_LEN, HIDDENS)
    # The outputs are not trivially small: a comparison at 1e-4 means something
    assert onp.abs(encoded_pt).mean() > 0.1 and onp.abs(mlm_pt).mean() > 0.1
    onp.testing.assert_allclose(encoded_mx, encoded_pt, atol=ATOL, rtol=0)
    onp.testing.assert_allclose(mlm_mx, mlm_pt, atol=ATOL, rtol=0)
    onp.testing.assert_allclose(nsp_mx, nsp_pt, atol=ATOL, rtol=0)


def test_same_outputs_without_padding_and_shorter_batches(models):
    mx_net, torch_net = models
    tokens, segments, _, pred_positions = padded_batch(seed=1, valid=(16, 16))
    outputs = run_both(mx_net, torch_net, tokens, segments, None, pred_positions)
    for a, b in zip(*outputs):
        onp.testing.assert_allclose(a, b, atol=ATOL, rtol=0)
    # Fewer positions than max_len
    tokens, segments, valid, pred_positions = padded_batch(seed=2, num_steps=7, valid=(7, 3, 6))
    outputs = run_both(mx_net, torch_net, tokens, segments, valid, pred_positions)
    for a, b in zip(*outputs):
        onp.testing.assert_allclose(a, b, atol=ATOL, rtol=0)


@pytest.mark.parametrize(
    'parameter',
    [
        'encoder.blks.1.addnorm1.ln.bias',  # a layer norm late in the network
        'encoder.blks.0.attention.W_k.weight',  # the keys of the first attention
        'encoder.pos_embedding',  # positions
        'mlm.mlp.2.weight',  # the MLM head's layer norm
    ],
)
def test_comparison_detects_a_changed_parameter(models, parameter):
    """The test above would catch a bug: perturbing any part changes the outputs."""
    mx_net, _ = models
    torch_net = torch_model()
    copy_mxnet_to_torch(mx_net, torch_net)
    with torch.no_grad():
        dict(torch_net.named_parameters())[parameter].mul_(1.05)
    outputs = run_both(mx_net, torch_net, *padded_batch())
    worst = max(onp.abs(a - b).max() for a, b in zip(*outputs))
    assert worst > 10 * ATOL
