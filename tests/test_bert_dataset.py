"""Tests of the BERT pretraining data (chapter sec_bert-dataset), in both frameworks.

The corpus fixture is the real WikiText-2 validation split (../shared/data/wikitext-2 beside
the repository), written as the `wiki.train.tokens` of a temporary directory. Statistical
checks use bounds of about five standard deviations and fixed seeds, so they are reproducible,
yet a wrong rule fails them.
"""

import gc
import importlib
import math
import pathlib

import numpy as onp
import pytest

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1] / 'data' / 'wikitext-2'
FRAMEWORK_MODULES = ('mxnet', 'torch')
SPECIAL_TOKENS = ('<pad>', '<mask>', '<cls>', '<sep>')
BATCH_SIZE, MAX_LEN = 256, 64
Z = 5.0  # bound in standard deviations for the statistical checks


def _module(name):
    return importlib.import_module(f'd2l_extras.{name}')


@pytest.fixture(scope='module')
def corpus_dir(tmp_path_factory):
    """A data directory whose wiki.train.tokens is the WikiText-2 validation split."""
    source = SHARED_DATA / 'wiki.valid.tokens'
    directory = tmp_path_factory.mktemp('wikitext2')
    (directory / 'wiki.train.tokens').write_text(
        source.read_text(encoding='utf-8'), encoding='utf-8'
    )
    return directory


def _to_numpy(array):
    return array.asnumpy() if hasattr(array, 'asnumpy') else array.numpy()


def _epoch(train_iter):
    """All minibatches of one epoch, each as a tuple of the framework's arrays."""
    return [tuple(batch) for batch in train_iter]


@pytest.fixture(scope='module', params=FRAMEWORK_MODULES)
def loaded(request, corpus_dir):
    """(module, train_iter, vocab, two epochs of batches) for one framework."""
    d2l = _module(request.param)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('D2L_WIKITEXT2_DIR', str(corpus_dir))
        train_iter, vocab = d2l.load_data_wiki(BATCH_SIZE, MAX_LEN, seed=0)
    epochs = [_epoch(train_iter), _epoch(train_iter)]
    return d2l, train_iter, vocab, epochs


@pytest.fixture(scope='module')
def arrays(loaded):
    """One epoch concatenated into NumPy arrays (in the batch's order of fields)."""
    _, _, vocab, epochs = loaded
    fields = zip(*[[_to_numpy(x) for x in batch] for batch in epochs[0]])
    return vocab, [onp.concatenate(f) for f in fields]


# --- reading the corpus -----------------------------------------------------------------


@pytest.mark.parametrize('name', FRAMEWORK_MODULES)
def test_read_wiki_keeps_lines_with_two_sentences(name, tmp_path):
    d2l = _module(name)
    (tmp_path / 'wiki.train.tokens').write_text(
        ' \n = Title = \n \n One sentence only . \n'
        ' First A . Second B , b . Third C . \n \n = = Section = = \n'
        ' Ends without period . Yes \n',
        encoding='utf-8',
    )
    assert d2l._read_wiki(tmp_path) == [
        ['first a', 'second b , b', 'third c'],
        ['ends without period', 'yes'],
    ]


@pytest.mark.parametrize('name', FRAMEWORK_MODULES)
def test_missing_train_file_gives_clear_error(name, tmp_path, monkeypatch):
    d2l = _module(name)
    (tmp_path / 'wiki.valid.tokens').write_text(' Only . Valid . \n', encoding='utf-8')
    with pytest.raises(FileNotFoundError, match='wiki.train.tokens.*D2L_WIKITEXT2_DIR'):
        d2l._read_wiki(tmp_path)
    monkeypatch.setenv('D2L_WIKITEXT2_DIR', str(tmp_path))
    with pytest.raises((FileNotFoundError, RuntimeError)) as info:
        d2l.load_data_wiki(BATCH_SIZE, MAX_LEN)
    assert 'wiki.train.tokens' in str(info.value)
    assert 'D2L_WIKITEXT2_DIR' in str(info.value)


@pytest.mark.parametrize('name', FRAMEWORK_MODULES)
def test_too_small_max_len_is_rejected(name, corpus_dir, monkeypatch):
    monkeypatch.setenv('D2L_WIKITEXT2_DIR', str(corpus_dir))
    with pytest.raises(ValueError, match='max_len'):
        _module(name).load_data_wiki(BATCH_SIZE, 4)
    assert gc.isenabled()  # the loader pauses the garbage collector only while it works


# --- next sentence prediction -----------------------------------------------------------


@pytest.mark.parametrize('name', FRAMEWORK_MODULES)
def test_nsp_pairs_are_next_or_random_corpus_sentences(name):
    d2l = _module(name)
    paragraphs = [[[f'p{p}s{s}', 'x'] for s in range(4)] for p in range(30)]
    sentences = {tuple(s) for paragraph in paragraphs for s in paragraph}
    rng = onp.random.default_rng(1)
    examples = d2l._get_nsp_examples(paragraphs, 100, rng)
    assert len(examples) == 30 * 3  # nothing is too long here
    for tokens, segments, is_next in examples:
        assert tokens[0] == '<cls>' and tokens[3] == '<sep>' and tokens[-1] == '<sep>'
        assert segments == [0] * 4 + [1] * 3
        a, b = tokens[1:3], tokens[4:6]
        assert tuple(b) in sentences
        p, s = (int(v) for v in a[0][1:].split('s'))
        if is_next:
            assert b[0] == f'p{p}s{s + 1}'
    assert {is_next for _, _, is_next in examples} == {True, False}


@pytest.mark.parametrize('name', FRAMEWORK_MODULES)
def test_nsp_labels_are_half_true(name, corpus_dir):
    d2l = _module(name)
    paragraphs = d2l._read_wiki(corpus_dir)
    # max_len so large that no pair is dropped: the labels are Bernoulli(0.5)
    longest = max(len(sentence.split()) for p in paragraphs for sentence in p)
    _, arrays = d2l._make_pretraining_arrays(paragraphs, 2 * longest + 3, seed=3)
    nsp_labels = arrays[-1]
    num_pairs = sum(len(p) - 1 for p in paragraphs)
    assert len(nsp_labels) == num_pairs
    assert set(onp.unique(nsp_labels)) <= {0, 1}
    bound = Z * 0.5 / math.sqrt(num_pairs)
    assert abs(nsp_labels.mean() - 0.5) < bound


@pytest.mark.parametrize('name', FRAMEWORK_MODULES)
def test_too_long_pairs_are_dropped(name):
    d2l = _module(name)
    # All sentences have 6 tokens, so any pair needs 6 + 6 + 3 = 15 positions
    paragraphs = [[[f'w{p}{s}'] * 6 for s in range(3)] for p in range(20)]
    rng = onp.random.default_rng(0)
    assert len(d2l._get_nsp_examples(paragraphs, 15, rng)) == 20 * 2
    assert d2l._get_nsp_examples(paragraphs, 14, rng) == []
    # A long sentence (20 tokens) never fits into 16 positions
    paragraphs[0][1] = ['long'] * 20
    examples = d2l._get_nsp_examples(paragraphs, 16, rng)
    assert examples and all(len(tokens) <= 16 for tokens, _, _ in examples)
    assert all('long' not in tokens for tokens, _, _ in examples)


# --- minibatches --------------------------------------------------------------------------


def test_batch_types_and_shapes(loaded):
    d2l, train_iter, vocab, epochs = loaded
    batches = epochs[0]
    num_preds = round(MAX_LEN * 0.15)
    num_examples = sum(batch[0].shape[0] for batch in batches)
    assert len(batches) == len(train_iter) == math.ceil(num_examples / BATCH_SIZE)
    for i, batch in enumerate(batches):
        assert len(batch) == 7
        n = BATCH_SIZE if i < len(batches) - 1 else batch[0].shape[0]
        shapes = [
            (n, MAX_LEN),
            (n, MAX_LEN),
            (n,),
            (n, num_preds),
            (n, num_preds),
            (n, num_preds),
            (n,),
        ]
        assert [tuple(x.shape) for x in batch] == shapes
    tokens_X, segments_X, valid_lens_x, pred_positions_X, mlm_weights_X, mlm_Y, nsp_y = batches[0]
    if d2l.__name__.endswith('torch'):
        import torch

        assert all(isinstance(x, torch.Tensor) for x in batches[0])
        for x in (tokens_X, segments_X, pred_positions_X, mlm_Y, nsp_y):
            assert x.dtype == torch.int64
        for x in (valid_lens_x, mlm_weights_X):
            assert x.dtype == torch.float32
    else:
        import mxnet as mx

        assert all(isinstance(x, mx.np.ndarray) for x in batches[0])
        for x in (tokens_X, segments_X, pred_positions_X, mlm_Y, nsp_y):
            assert onp.issubdtype(x.dtype, onp.integer)
        for x in (valid_lens_x, mlm_weights_X):
            assert x.dtype == onp.float32
        # The pretraining loop splits every field over the devices
        devices = [mx.cpu(0), mx.cpu(1)]
        for x in batches[0]:
            shards = mx.gluon.utils.split_and_load(x, devices, even_split=False)
            assert sum(s.shape[0] for s in shards) == x.shape[0]


def test_epochs_are_shuffled_permutations(loaded):
    _, _, _, (first, second) = loaded

    def rows(epoch):
        tokens = onp.concatenate([_to_numpy(b[0]) for b in epoch])
        nsp = onp.concatenate([_to_numpy(b[6]) for b in epoch])
        return onp.column_stack([tokens, nsp])

    rows_1, rows_2 = rows(first), rows(second)
    assert rows_1.shape == rows_2.shape
    assert not onp.array_equal(rows_1, rows_2)  # a new order every epoch
    order_1, order_2 = onp.lexsort(rows_1.T), onp.lexsort(rows_2.T)
    assert onp.array_equal(rows_1[order_1], rows_2[order_2])  # the same examples


def test_padding_and_valid_lengths(arrays):
    vocab, (tokens, segments, valid_lens, _, _, _, _) = arrays
    pad, cls, sep = vocab['<pad>'], vocab['<cls>'], vocab['<sep>']
    assert onp.all(valid_lens == onp.round(valid_lens))
    lengths = valid_lens.astype(int)
    assert lengths.min() >= 5 and lengths.max() <= MAX_LEN
    is_token = onp.arange(MAX_LEN) < lengths[:, None]
    assert onp.all((tokens == pad) == ~is_token)  # '<pad>' exactly after valid_len
    assert onp.all(segments[~is_token] == 0)
    assert onp.all(tokens[:, 0] == cls)
    assert onp.all(tokens[onp.arange(len(tokens)), lengths - 1] == sep)
    assert onp.all((tokens == sep).sum(axis=1) == 2)
    # Segment IDs: 0 up to the first '<sep>', then 1 up to the second one
    first_sep = onp.argmax(tokens == sep, axis=1)
    positions = onp.arange(MAX_LEN)
    expected = ((positions > first_sep[:, None]) & is_token).astype(segments.dtype)
    assert onp.array_equal(segments, expected)


def test_prediction_slots_and_weights(arrays):
    vocab, (tokens, _, valid_lens, positions, weights, labels, _) = arrays
    specials = [vocab[t] for t in ('<pad>', '<cls>', '<sep>')]
    num_slots = round(MAX_LEN * 0.15)
    assert set(onp.unique(weights)) <= {0.0, 1.0}
    num_preds = weights.sum(axis=1).astype(int)
    # Real slots first, then padded ones with weight 0
    assert onp.array_equal(weights, (onp.arange(num_slots) < num_preds[:, None]))
    # 15% of the non-special tokens (all but '<cls>' and two '<sep>'), at least one
    num_candidates = valid_lens.astype(int) - 3
    assert onp.array_equal(num_preds, onp.maximum(1, onp.round(0.15 * num_candidates)))
    is_real = weights == 1
    real_positions = onp.where(is_real, positions, -1)
    rows = onp.arange(len(tokens))[:, None]
    inputs_at = onp.take_along_axis(tokens, positions, axis=1)
    # Real prediction positions lie inside the example, increase, and never point at
    # '<cls>', '<sep>' or '<pad>' (neither in the input nor in the original tokens)
    assert onp.all(positions[is_real] >= 1)
    assert onp.all((positions < valid_lens[:, None])[is_real])
    assert onp.all(onp.diff(real_positions, axis=1)[is_real[:, 1:]] > 0)
    assert not onp.isin(inputs_at[is_real], specials).any()
    assert not onp.isin(labels[is_real], specials + [vocab['<mask>']]).any()
    # '<mask>' appears only at prediction positions
    is_pred = onp.zeros(tokens.shape, dtype=bool)
    is_pred[onp.broadcast_to(rows, is_real.shape)[is_real], positions[is_real]] = True
    assert not onp.any((tokens == vocab['<mask>']) & ~is_pred)


def test_replacement_rule_80_10_10(arrays):
    vocab, (tokens, _, _, positions, weights, labels, _) = arrays
    is_real = weights == 1
    inputs = onp.take_along_axis(tokens, positions, axis=1)[is_real]
    labels = labels[is_real]
    n = len(labels)
    observed = onp.array(
        [
            (inputs == vocab['<mask>']).sum(),
            (inputs == labels).sum(),
            ((inputs != vocab['<mask>']) & (inputs != labels)).sum(),
        ]
    )
    # A random replacement hits the original token with probability 1 / M
    m = len(vocab) - len(SPECIAL_TOKENS)
    expected = n * onp.array([0.8, 0.1 + 0.1 / m, 0.1 - 0.1 / m])
    chi_square = ((observed - expected) ** 2 / expected).sum()
    assert chi_square < 25, (observed / n, chi_square)  # 2 dof: p < 4e-6
    # Random replacements come from many different ordinary tokens
    replaced = inputs[(inputs != vocab['<mask>']) & (inputs != labels)]
    assert len(onp.unique(replaced)) > 0.5 * len(replaced)


@pytest.mark.parametrize('name', FRAMEWORK_MODULES)
def test_random_replacements_are_uniform_ordinary_tokens(name):
    """With a tiny vocabulary, a random replacement that could be a special token shows."""
    d2l = _module(name)
    words = ['a', 'b', 'c', 'd', 'e', 'f']
    vocab = d2l.Vocab([words], reserved_tokens=list(SPECIAL_TOKENS))
    ordinary = sorted(vocab[words + ['<unk>']])
    rng = onp.random.default_rng(5)
    num_examples, max_len = 4000, 48
    # '<cls>' 20 words '<sep>' 20 words '<sep>' '<pad>' ...
    token_ids = rng.choice(vocab[words], size=(num_examples, max_len))
    token_ids[:, 0], token_ids[:, [21, 42]] = vocab['<cls>'], vocab['<sep>']
    token_ids[:, 43:] = vocab['<pad>']
    original_ids = token_ids.copy()
    inputs, positions, weights, labels = d2l._mask_tokens(token_ids, vocab, rng)
    assert onp.array_equal(token_ids, original_ids)  # the input array is left alone
    is_real = weights == 1
    assert onp.all(weights.sum(axis=1) == round(0.15 * 40))
    originals = labels[is_real]
    assert onp.array_equal(originals, onp.take_along_axis(token_ids, positions, 1)[is_real])
    at_positions = onp.take_along_axis(inputs, positions, 1)[is_real]
    # Outside the prediction positions nothing changes
    changed = inputs != token_ids
    changed[onp.repeat(onp.arange(num_examples), is_real.sum(axis=1)), positions[is_real]] = False
    assert not changed.any()
    replaced = at_positions[(at_positions != vocab['<mask>']) & (at_positions != originals)]
    assert set(onp.unique(replaced)) <= set(ordinary)
    # A random pick is uniform over the 7 ordinary tokens; picks equal to the original
    # look unchanged, so token t is expected 0.1 / 7 times per prediction of another token
    num_orig = onp.array([(originals == t).sum() for t in ordinary])
    expected = 0.1 / len(ordinary) * (len(originals) - num_orig)
    observed = onp.array([(replaced == t).sum() for t in ordinary])
    chi_square = ((observed - expected) ** 2 / expected).sum()
    assert chi_square < 40, (observed, expected)  # 6 dof: p < 1e-6


def test_prediction_positions_are_uniform(arrays):
    """Every candidate token of an example is chosen with the same probability."""
    vocab, (tokens, _, valid_lens, positions, weights, _, _) = arrays
    num_bins = 4  # candidates binned by their rank: first quarter, second quarter, ...
    observed, expected, variance = (onp.zeros(num_bins) for _ in range(3))
    first_sep = onp.argmax(tokens == vocab['<sep>'], axis=1)
    for i, length in enumerate(valid_lens.astype(int)):
        # All positions but '<cls>' and the two '<sep>'
        candidates = onp.setdiff1d(onp.arange(1, length - 1), [first_sep[i]])
        chosen = positions[i][weights[i] == 1]
        ranks = onp.searchsorted(candidates, chosen)
        assert onp.array_equal(candidates[ranks], chosen)
        p = len(chosen) / len(candidates)
        bin_sizes = onp.bincount(
            onp.arange(len(candidates)) * num_bins // len(candidates), minlength=num_bins
        )
        expected += p * bin_sizes
        variance += p * (1 - p) * bin_sizes  # >= the variance without replacement
        observed += onp.bincount(ranks * num_bins // len(candidates), minlength=num_bins)
    z = (observed - expected) / onp.sqrt(variance)
    assert onp.all(abs(z) < Z), z


@pytest.mark.parametrize('name', FRAMEWORK_MODULES)
def test_same_seed_same_examples(name, corpus_dir):
    d2l = _module(name)
    paragraphs = d2l._read_wiki(corpus_dir)[:300]
    _, a = d2l._make_pretraining_arrays(paragraphs, MAX_LEN, seed=7)
    _, b = d2l._make_pretraining_arrays(paragraphs, MAX_LEN, seed=7)
    _, c = d2l._make_pretraining_arrays(paragraphs, MAX_LEN, seed=8)
    assert all(onp.array_equal(x, y) for x, y in zip(a, b))
    assert not all(onp.array_equal(x, y) for x, y in zip(a, c))


def test_vocab_has_reserved_tokens_and_min_freq(loaded, corpus_dir):
    d2l, _, vocab, _ = loaded
    reserved = SPECIAL_TOKENS + ('<unk>',)
    assert all(token in vocab.token_to_idx for token in reserved)
    counts = {}
    for paragraph in d2l._read_wiki(corpus_dir):
        for sentence in paragraph:
            for token in sentence.split():
                counts[token] = counts.get(token, 0) + 1
    frequent = {token for token, count in counts.items() if count >= 5}
    assert set(vocab.idx_to_token) - set(reserved) == frequent - set(reserved)
    assert len(vocab) == len(set(vocab.idx_to_token))
