"""Unit tests of the BERT model of chapters/bert.md (sec_bert), for both frameworks.

The code under test is what `python -m booktools sync` extracts from the chapter's `#@save`
blocks into d2l_extras/{mxnet,torch}.py.
"""

import os
import subprocess
import sys

import numpy as onp
import psutil
import pytest

torch = pytest.importorskip('torch')
mx = pytest.importorskip('mxnet')
from mxnet import autograd, init, np, npx  # noqa: E402

npx.set_np()

from d2l_extras import mxnet as d2l_mx  # noqa: E402
from d2l_extras import torch as d2l_torch  # noqa: E402

VOCAB, HIDDENS, FFN, HEADS, LAYERS, MAX_LEN = 50, 16, 32, 2, 2, 12


def torch_bert(vocab_size=VOCAB, num_hiddens=HIDDENS, max_len=MAX_LEN, seed=0, **sizes):
    torch.manual_seed(seed)
    kwargs = dict(
        key_size=num_hiddens,
        query_size=num_hiddens,
        value_size=num_hiddens,
        hid_in_features=num_hiddens,
        mlm_in_features=num_hiddens,
        nsp_in_features=num_hiddens,
    )
    kwargs.update(sizes)
    return d2l_torch.BERTModel(
        vocab_size,
        num_hiddens,
        [num_hiddens],
        num_hiddens,
        FFN,
        HEADS,
        LAYERS,
        0.1,
        max_len=max_len,
        **kwargs,
    )


def mxnet_bert(vocab_size=VOCAB, num_hiddens=HIDDENS, max_len=MAX_LEN, seed=0):
    mx.random.seed(seed)
    net = d2l_mx.BERTModel(vocab_size, num_hiddens, FFN, HEADS, LAYERS, 0.1, max_len=max_len)
    net.initialize(init.Xavier())
    return net


def batch(num_steps=10, valid=(10, 4, 7), num_preds=3, seed=0):
    """A padded batch as numpy arrays: tokens, segments, valid_lens, pred_positions."""
    rng = onp.random.default_rng(seed)
    valid = onp.array(valid)
    tokens = rng.integers(5, VOCAB, (len(valid), num_steps))
    segments = onp.zeros_like(tokens)
    for i, length in enumerate(valid):
        tokens[i, length:] = 0  # <pad>
        segments[i, length // 2 : length] = 1
    pred_positions = onp.stack(
        [rng.choice(onp.arange(1, n), num_preds, replace=False) for n in valid]
    )
    return tokens, segments, valid.astype('float32'), pred_positions


def to_torch(arrays):
    tokens, segments, valid_lens, pred_positions = arrays
    return (
        torch.tensor(tokens),
        torch.tensor(segments),
        torch.tensor(valid_lens),
        torch.tensor(pred_positions),
    )


def to_mxnet(arrays):
    # The MXNet data pipeline yields int32 tokens/positions and float32 valid_lens
    tokens, segments, valid_lens, pred_positions = arrays
    return (
        np.array(tokens, dtype='int32'),
        np.array(segments, dtype='int32'),
        np.array(valid_lens, dtype='float32'),
        np.array(pred_positions, dtype='int32'),
    )


def as_numpy(x):
    return x.detach().numpy() if isinstance(x, torch.Tensor) else x.asnumpy()


# ------------------------------------------------------------------ get_tokens_and_segments


@pytest.mark.parametrize('d2l', [d2l_mx, d2l_torch], ids=['mxnet', 'pytorch'])
def test_tokens_and_segments_single_text(d2l):
    tokens, segments = d2l.get_tokens_and_segments(['a', 'crane', 'is', 'flying'])
    assert tokens == ['<cls>', 'a', 'crane', 'is', 'flying', '<sep>']
    assert segments == [0] * 6


@pytest.mark.parametrize('d2l', [d2l_mx, d2l_torch], ids=['mxnet', 'pytorch'])
def test_tokens_and_segments_pair(d2l):
    tokens, segments = d2l.get_tokens_and_segments(['a', 'crane'], ['he', 'left'])
    assert tokens == ['<cls>', 'a', 'crane', '<sep>', 'he', 'left', '<sep>']
    assert segments == [0, 0, 0, 0, 1, 1, 1]
    # An empty text still gets its special tokens; a tuple works like a list
    assert d2l.get_tokens_and_segments([], ()) == (['<cls>', '<sep>', '<sep>'], [0, 0, 1])


@pytest.mark.parametrize('d2l', [d2l_mx, d2l_torch], ids=['mxnet', 'pytorch'])
@pytest.mark.parametrize(
    'tokens_a, tokens_b',
    [
        ('a crane is flying', None),  # a raw string, not tokens
        (['a', 3], None),  # token ids instead of strings
        (['a', 'crane'], 'he just left'),  # the second text as a raw string
        (None, None),
    ],
)
def test_tokens_and_segments_rejects_bad_input(d2l, tokens_a, tokens_b):
    with pytest.raises(TypeError, match='list of token strings'):
        d2l.get_tokens_and_segments(tokens_a, tokens_b)


# ------------------------------------------------------------------ packing helpers


def test_torch_packing_roundtrip():
    """The PyTorch encoder packs valid tokens; MXNet computes on the padded batch."""
    tokens = onp.array([[5, 6, 7, 8], [9, 10, 0, 0], [11, 0, 0, 0]])
    valid = onp.array([4, 2, 1])
    features = onp.arange(12 * 3, dtype='float32').reshape(3, 4, 3)
    expected_packed = onp.concatenate([features[i, :n] for i, n in enumerate(valid)])
    mask = onp.arange(4) < valid[:, None]

    pack_index, is_valid = d2l_torch.packing_indices(torch.tensor(tokens), torch.tensor(valid))
    packed = d2l_torch.pack_tokens(torch.tensor(features), pack_index)
    onp.testing.assert_array_equal(packed.numpy(), expected_packed)
    onp.testing.assert_array_equal(is_valid.numpy(), mask)
    unpacked = d2l_torch.unpack_tokens(packed, pack_index, is_valid).numpy()
    onp.testing.assert_array_equal(unpacked, features * mask[..., None])


def test_torch_unpack_gradient_reaches_valid_rows_only():
    """Backward of unpack_tokens: each packed row gets the gradient of its own position."""
    valid = torch.tensor([3, 1])
    pack_index, is_valid = d2l_torch.packing_indices(torch.zeros(2, 3), valid)
    packed = torch.zeros(4, 2, requires_grad=True)
    weights = torch.arange(12.0).reshape(2, 3, 2)
    (d2l_torch.unpack_tokens(packed, pack_index, is_valid) * weights).sum().backward()
    onp.testing.assert_array_equal(packed.grad.numpy(), weights[is_valid].numpy())


# ------------------------------------------------------------------ output shapes


def assert_bert_output_shapes(net, tokens, segments, valid_lens, pred_positions):
    """Shapes of BERTModel's outputs and of its parts, for the 3-example `batch()`."""
    encoded, mlm, nsp = net(tokens, segments, valid_lens, pred_positions)
    assert encoded.shape == (3, 10, HIDDENS)
    assert mlm.shape == (3, 3, VOCAB)
    assert nsp.shape == (3, 2)
    # The parts on their own
    assert net.encoder(tokens, segments, valid_lens).shape == (3, 10, HIDDENS)
    assert net.mlm(encoded, pred_positions).shape == (3, 3, VOCAB)
    assert net.nsp(encoded[:, 0, :]).shape == (3, 2)
    # Without pred_positions (and valid_lens) there are no MLM predictions
    encoded, mlm, nsp = net(tokens, segments)
    assert encoded.shape == (3, 10, HIDDENS) and mlm is None and nsp.shape == (3, 2)


def test_torch_shapes():
    assert_bert_output_shapes(torch_bert(), *to_torch(batch()))


@pytest.mark.parametrize('hybridize', [False, True])
def test_mxnet_shapes(hybridize):
    net = mxnet_bert()  # BERTModel hybridizes itself
    net.hybridize(active=hybridize)
    tokens, segments, valid_lens, pred_positions = to_mxnet(batch())
    assert_bert_output_shapes(net, tokens, segments, valid_lens, pred_positions)
    # The notebook's get_bert_encoding passes float32 ids; shapes may change between calls
    encoded, _, _ = net(
        tokens[:1, :6].astype('float32'), segments[:1, :6].astype('float32'), np.array([6.0])
    )
    assert encoded.shape == (1, 6, HIDDENS)


def test_padding_positions_are_zero_and_do_not_matter():
    """Encodings of valid tokens must not depend on the padding after them."""
    arrays = batch(num_steps=10, valid=(6, 6, 6))
    tokens, segments, valid_lens, _ = arrays
    longer = (
        onp.concatenate([tokens, onp.full((3, 2), 9)], axis=1),  # junk padding
        onp.concatenate([segments, onp.ones((3, 2), dtype=segments.dtype)], axis=1),
    )

    net = torch_bert().eval()
    with torch.no_grad():
        short = net.encoder(
            torch.tensor(tokens), torch.tensor(segments), torch.tensor(valid_lens)
        ).numpy()
        long = net.encoder(*map(torch.tensor, longer), torch.tensor(valid_lens)).numpy()
    onp.testing.assert_allclose(short[:, :6], long[:, :6], atol=1e-5)
    assert not long[:, 6:].any() and not short[:, 6:].any()

    net = mxnet_bert()
    net.hybridize()
    short = net.encoder(np.array(tokens), np.array(segments), np.array(valid_lens)).asnumpy()
    long = net.encoder(*map(np.array, longer), np.array(valid_lens)).asnumpy()
    onp.testing.assert_allclose(short[:, :6], long[:, :6], atol=1e-5)
    assert not long[:, 6:].any()


def test_torch_attention_matches_naive_masked_softmax():
    """The fused attention with packing equals textbook attention with a -inf mask."""
    torch.manual_seed(1)
    attention = d2l_torch.MultiHeadSelfAttention(HIDDENS, HEADS)
    tokens = torch.zeros(3, 10, dtype=torch.long)
    valid_lens = torch.tensor([10, 4, 7])
    X = torch.randn(3, 10, HIDDENS)
    pack_index, is_valid = d2l_torch.packing_indices(tokens, valid_lens)
    mask = is_valid.reshape(3, 1, 1, 10)
    packed_out = attention(d2l_torch.pack_tokens(X, pack_index), pack_index, is_valid)
    out = d2l_torch.unpack_tokens(packed_out, pack_index, is_valid)

    def heads(Y):
        return Y.reshape(3, 10, HEADS, -1).transpose(1, 2)

    q, k, v = heads(attention.W_q(X)), heads(attention.W_k(X)), heads(attention.W_v(X))
    scores = q @ k.transpose(-1, -2) / (HIDDENS // HEADS) ** 0.5
    scores = scores.masked_fill(~mask, float('-inf'))
    naive = (scores.softmax(-1) @ v).transpose(1, 2).reshape(3, 10, HIDDENS)
    naive = attention.W_o(naive) * mask.reshape(3, 10, 1)
    onp.testing.assert_allclose(out.detach().numpy(), naive.detach().numpy(), atol=1e-5)


def test_mxnet_hybridized_equals_imperative():
    net = mxnet_bert()  # BERTModel hybridizes itself
    inputs = to_mxnet(batch())
    as_graph = [as_numpy(y) for y in net(*inputs)]
    net.hybridize(active=False)
    one_by_one = [as_numpy(y) for y in net(*inputs)]
    for g, o in zip(as_graph, one_by_one):
        onp.testing.assert_allclose(g, o, atol=1e-5)


# ------------------------------------------------------------------ learning signal


def test_torch_positional_embedding_is_learned():
    net = torch_bert()
    encoded, mlm, nsp = net(*to_torch(batch()))
    (encoded.sum() + mlm.sum() + nsp.sum()).backward()
    assert net.encoder.pos_embedding.grad is not None
    assert net.encoder.pos_embedding.grad[0, :10].abs().sum() > 0
    assert net.encoder.pos_embedding.grad[0, 10:].abs().sum() == 0  # unused positions
    assert all(p.grad is not None for p in net.parameters())


def test_mxnet_gradients_reach_all_parameters():
    net = mxnet_bert()
    net.hybridize()
    inputs = to_mxnet(batch())
    with autograd.record():
        encoded, mlm, nsp = net(*inputs)
        loss = encoded.sum() + mlm.sum() + nsp.sum()
    loss.backward()
    for name, param in net.collect_params().items():
        assert onp.abs(param.grad().asnumpy()).sum() > 0, name


# ------------------------------------------------------------------ clear errors


def test_too_long_sequences_raise_a_clear_error():
    tokens = onp.zeros((2, MAX_LEN + 1), dtype='int32')
    net = torch_bert()
    with pytest.raises(ValueError, match=r'max_len=12.*truncate'):
        net(torch.tensor(tokens), torch.tensor(tokens))
    net = mxnet_bert()
    net.hybridize()
    with pytest.raises(ValueError, match=r'max_len=12.*truncate'):
        net(np.array(tokens), np.array(tokens))
    # Exactly max_len positions are fine
    assert net(np.array(tokens[:, :MAX_LEN]), np.array(tokens[:, :MAX_LEN]))[0].shape == (
        2,
        MAX_LEN,
        HIDDENS,
    )


@pytest.mark.parametrize('framework', ['mxnet', 'pytorch'])
@pytest.mark.parametrize(
    'valid_lens, message',
    [
        ([10, 0, 7], r'valid_lens .* \[1, num_steps=10\]'),
        ([10, 11, 7], r'valid_lens .* \[1, num_steps=10\]'),
        ([10, 4], r'one length per sequence'),
    ],
)
def test_bad_valid_lens_raise(framework, valid_lens, message):
    tokens, segments, _, _ = batch()
    if framework == 'pytorch':
        net, arr = torch_bert(), torch.tensor
    else:
        net, arr = mxnet_bert(), np.array
    with pytest.raises(ValueError, match=message):
        net(arr(tokens), arr(segments), arr(onp.array(valid_lens, dtype='float32')))


@pytest.mark.parametrize('framework', ['mxnet', 'pytorch'])
def test_bad_shapes_and_positions_raise(framework):
    tokens, segments, valid_lens, pred_positions = batch()
    if framework == 'pytorch':
        net, arr = torch_bert(), torch.tensor
    else:
        net, arr = mxnet_bert(), np.array
    with pytest.raises(ValueError, match='batch_size, num_steps'):
        net(arr(tokens[0]), arr(segments[0]))
    with pytest.raises(ValueError, match='segments must have the shape'):
        net(arr(tokens), arr(segments[:, :5]))
    bad_positions = pred_positions.copy()
    bad_positions[0, 0] = 10  # == num_steps
    with pytest.raises(ValueError, match='pred_positions must lie in'):
        net(arr(tokens), arr(segments), arr(valid_lens), arr(bad_positions))
    with pytest.raises(ValueError, match='pred_positions must have shape'):
        net(arr(tokens), arr(segments), arr(valid_lens), arr(pred_positions[:2]))


def test_torch_sizes_must_match_num_hiddens():
    # d2l's defaults (768) with a 16-unit model fail at construction, with the fix in the text
    with pytest.raises(ValueError, match=r'=768 does not fit num_hiddens=16.* pass \w+=16'):
        d2l_torch.BERTModel(VOCAB, HIDDENS, [HIDDENS], HIDDENS, FFN, HEADS, LAYERS, 0.1)
    with pytest.raises(ValueError, match=r'norm_shape=\[8\] .* pass norm_shape=\[16\]'):
        d2l_torch.BERTEncoder(
            VOCAB,
            HIDDENS,
            [8],
            HIDDENS,
            FFN,
            HEADS,
            LAYERS,
            0.1,
            key_size=HIDDENS,
            query_size=HIDDENS,
            value_size=HIDDENS,
        )
    with pytest.raises(ValueError, match=r'mlm_in_features=8'):
        torch_bert(mlm_in_features=8)
    # norm_shape may be given as an int or a tuple too
    d2l_torch.BERTEncoder(
        VOCAB,
        HIDDENS,
        HIDDENS,
        HIDDENS,
        FFN,
        HEADS,
        LAYERS,
        0.1,
        key_size=HIDDENS,
        query_size=HIDDENS,
        value_size=HIDDENS,
    )


@pytest.mark.parametrize('framework', ['mxnet', 'pytorch'])
def test_heads_must_divide_hiddens(framework):
    with pytest.raises(ValueError, match='divisible by num_heads'):
        if framework == 'pytorch':
            d2l_torch.MultiHeadSelfAttention(HIDDENS, 3)
        else:
            d2l_mx.MultiHeadSelfAttention(HIDDENS, 3)


# ------------------------------------------------------------------ CPU threads

THREADS_AFTER_IMPORT = """
import os
from d2l_extras import mxnet
print(os.environ['OMP_NUM_THREADS'])
"""


@pytest.mark.slow
@pytest.mark.parametrize('preset', [None, '1'], ids=['unset', 'set-by-user'])
def test_mxnet_threads_default_to_physical_cores_unless_set(preset):
    """MXNet reads OMP_NUM_THREADS once, at import: d2l_extras sets it first, if unset."""
    env = {key: value for key, value in os.environ.items() if key != 'OMP_NUM_THREADS'}
    if preset is not None:
        env['OMP_NUM_THREADS'] = preset
    result = subprocess.run(
        [sys.executable, '-c', THREADS_AFTER_IMPORT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    expected = preset or str(min(psutil.cpu_count(logical=False), len(os.sched_getaffinity(0))))
    assert result.stdout.split()[-1] == expected
