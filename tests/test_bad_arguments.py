"""Every public function of d2l_extras, in both frameworks, refuses a bad
argument with one clear error that names it, before any work is done.

One table: a row is (function, the call with one bad argument, the error, a
word of its message). A new function joins with one line; `call` receives
the framework's module and a helper `arr` that makes its arrays.
"""

import math

import pytest

from d2l_extras import wikitext2

FRAMEWORKS = ['mxnet', 'torch']


def _module(framework):
    if framework == 'torch':
        from d2l_extras import torch as d2l
    else:
        from d2l_extras import mxnet as d2l
    return d2l


def arr(framework):
    """Make an array of the framework from nested lists (ids as integers)."""
    if framework == 'torch':
        import torch

        return lambda data, **kwargs: torch.tensor(data, **kwargs)
    from mxnet import np

    return lambda data, **kwargs: np.array(data, **kwargs)


def encoder(d2l, framework, vocab_size=100):
    """A tiny BERTEncoder (MXNet: initialized)."""
    if framework == 'torch':
        return d2l.BERTEncoder(
            vocab_size, 8, [8], 8, 16, 2, 1, 0.0, max_len=16, key_size=8, query_size=8, value_size=8
        )
    net = d2l.BERTEncoder(vocab_size, 8, 16, 2, 1, 0.0, max_len=16)
    net.initialize()
    return net


def model(d2l, framework, **kwargs):
    """A tiny BERTModel with kwargs replacing its arguments."""
    if framework == 'torch':
        options = dict(
            vocab_size=100,
            num_hiddens=8,
            norm_shape=[8],
            ffn_num_input=8,
            ffn_num_hiddens=16,
            num_heads=2,
            num_layers=1,
            dropout=0.0,
            max_len=16,
            key_size=8,
            query_size=8,
            value_size=8,
            hid_in_features=8,
            mlm_in_features=8,
            nsp_in_features=8,
        )
    else:
        options = dict(
            vocab_size=100,
            num_hiddens=8,
            ffn_num_hiddens=16,
            num_heads=2,
            num_layers=1,
            dropout=0.0,
            max_len=16,
        )
    options.update(kwargs)
    net = d2l.BERTModel(**options)
    if framework == 'mxnet':
        net.initialize()
    return net


def forward(
    d2l,
    a,
    framework,
    tokens=((1, 2, 3, 4), (5, 6, 7, 8)),
    segments=((0, 0, 1, 1), (0, 0, 1, 1)),
    valid_lens=(4.0, 2.0),
):
    net = encoder(d2l, framework)
    return net(
        a([list(t) for t in tokens]),
        a([list(s) for s in segments]),
        None if valid_lens is None else a(list(valid_lens)),
    )


SIZES = (100, 8, 16, 2, 1, 4, 16)  # estimate_bert_memory's positional args

# (function, call(d2l, a, framework), error, words of the message)
BAD_CALLS = [
    # memory estimator: negative or NaN sizes must not "fit"
    (
        'estimate_bert_memory',
        lambda d2l, a, f: d2l.estimate_bert_memory(-100, *SIZES[1:]),
        ValueError,
        'vocab_size',
    ),
    (
        'estimate_bert_memory',
        lambda d2l, a, f: d2l.estimate_bert_memory(*SIZES[:5], -4, 16),
        ValueError,
        'batch_size',
    ),
    (
        'estimate_bert_memory',
        lambda d2l, a, f: d2l.estimate_bert_memory(*SIZES[:6], 16.5),
        TypeError,
        'max_len',
    ),
    (
        'estimate_bert_memory',
        lambda d2l, a, f: d2l.estimate_bert_memory(*SIZES, num_mlm_preds=40),
        ValueError,
        'num_mlm_preds',
    ),
    (
        'check_bert_fits',
        lambda d2l, a, f: d2l.check_bert_fits(*SIZES[:6], -16),
        ValueError,
        'max_len',
    ),
    (
        'check_bert_fits',
        lambda d2l, a, f: d2l.check_bert_fits(*SIZES, device='cuda:x'),
        ValueError,
        'device',
    ),
    ('available_memory', lambda d2l, a, f: d2l.available_memory('gpu(one)'), ValueError, 'device'),
    ('format_bytes', lambda d2l, a, f: d2l.format_bytes(math.nan), ValueError, 'num_bytes'),
    ('format_bytes', lambda d2l, a, f: d2l.format_bytes(-1), ValueError, 'num_bytes'),
    # data
    ('load_data_wiki', lambda d2l, a, f: d2l.load_data_wiki(-1, 64), ValueError, 'batch_size'),
    ('load_data_wiki', lambda d2l, a, f: d2l.load_data_wiki(2.5, 64), TypeError, 'batch_size'),
    ('load_data_wiki', lambda d2l, a, f: d2l.load_data_wiki('512', 64), TypeError, 'batch_size'),
    ('load_data_wiki', lambda d2l, a, f: d2l.load_data_wiki(True, 64), TypeError, 'batch_size'),
    ('load_data_wiki', lambda d2l, a, f: d2l.load_data_wiki(512, 64.0), TypeError, 'max_len'),
    ('load_data_wiki', lambda d2l, a, f: d2l.load_data_wiki(512, 64, seed=-1), ValueError, 'seed'),
    ('_read_wiki', lambda d2l, a, f: d2l._read_wiki(42), TypeError, 'data_dir'),
    # model construction
    (
        'MultiHeadSelfAttention',
        lambda d2l, a, f: d2l.MultiHeadSelfAttention(8, 0),
        ValueError,
        'num_heads',
    ),
    ('NextSentencePred', lambda d2l, a, f: d2l.NextSentencePred(0), ValueError, 'num_inputs'),
    ('MaskLM', lambda d2l, a, f: d2l.MaskLM(-5, 8), ValueError, 'vocab_size'),
    ('BERTModel', lambda d2l, a, f: model(d2l, f, num_hiddens=0), ValueError, 'num_hiddens'),
    ('BERTModel', lambda d2l, a, f: model(d2l, f, dropout=1.5), ValueError, 'dropout'),
    ('BERTModel', lambda d2l, a, f: model(d2l, f, dropout=math.nan), ValueError, 'dropout'),
    ('BERTModel', lambda d2l, a, f: model(d2l, f, num_layers=2.0), TypeError, 'num_layers'),
    ('BERTModel', lambda d2l, a, f: model(d2l, f, max_len=10**12), MemoryError, 'max_len'),
    # forward passes: ids against the vocabulary and the segments, NaN
    (
        'BERTEncoder.forward',
        lambda d2l, a, f: forward(d2l, a, f, tokens=((1, 2, 3, 12345), (5, 6, 7, 8))),
        ValueError,
        'tokens',
    ),
    (
        'BERTEncoder.forward',
        lambda d2l, a, f: forward(d2l, a, f, tokens=((1, 2, 3, -1), (5, 6, 7, 8))),
        ValueError,
        'tokens',
    ),
    (
        'BERTEncoder.forward',
        lambda d2l, a, f: forward(d2l, a, f, segments=((0, 0, 1, 2), (0, 0, 1, 1))),
        ValueError,
        'segments',
    ),
    (
        'BERTEncoder.forward',
        lambda d2l, a, f: forward(d2l, a, f, valid_lens=(4.0, math.nan)),
        ValueError,
        'valid_lens',
    ),
    (
        'BERTEncoder.forward',
        lambda d2l, a, f: encoder(d2l, f)([[1, 2, 3, 4]], a([[0, 0, 1, 1]])),
        TypeError,
        'tokens',
    ),
    (
        'BERTModel.forward',
        lambda d2l, a, f: model(d2l, f)(a([[1, 2, 3, 4]]), a([[0, 0, 1, 1]]), a([4.0]), [[1, 2]]),
        TypeError,
        'pred_positions',
    ),
    (
        'check_bert_inputs',
        lambda d2l, a, f: d2l.check_bert_inputs(a([[1, 2]]), a([[0, 1]]), a([math.nan]), 16),
        ValueError,
        'valid_lens',
    ),
    # data parallelism and checkpoints (sec_bert-distributed); checked before the corpus loads
    (
        'load_data_wiki_shard',
        lambda d2l, a, f: d2l.load_data_wiki_shard(-1, 64, 0, 2),
        ValueError,
        'batch_size',
    ),
    (
        'load_data_wiki_shard',
        lambda d2l, a, f: d2l.load_data_wiki_shard(2.5, 64, 0, 2),
        TypeError,
        'batch_size',
    ),
    (
        'load_data_wiki_shard',
        lambda d2l, a, f: d2l.load_data_wiki_shard(63, 64, 0, 2),
        ValueError,
        'multiple of num_workers',
    ),
    (
        'load_data_wiki_shard',
        lambda d2l, a, f: d2l.load_data_wiki_shard(64, 64, 2, 2),
        ValueError,
        'rank=2',
    ),
    (
        'load_data_wiki_shard',
        lambda d2l, a, f: d2l.load_data_wiki_shard(64, 64, -1, 2),
        ValueError,
        'rank',
    ),
    (
        'load_data_wiki_shard',
        lambda d2l, a, f: d2l.load_data_wiki_shard(64, 64, 0, 0),
        ValueError,
        'num_workers',
    ),
    ('bert_config', lambda d2l, a, f: d2l.bert_config(num_heads=0), ValueError, 'num_heads'),
    (
        'bert_config',
        lambda d2l, a, f: d2l.bert_config(num_hiddens=130, num_heads=4),
        ValueError,
        'num_hiddens=130',
    ),
    ('bert_config', lambda d2l, a, f: d2l.bert_config(dropout=1.0), ValueError, 'dropout'),
    ('bert_config', lambda d2l, a, f: d2l.bert_config(num_heads=3), ValueError, 'num_hiddens=128'),
    (
        'save_checkpoint',
        lambda d2l, a, f: d2l.save_checkpoint(42, None, None, 0, None, {}),
        TypeError,
        'path',
    ),
    (
        'save_checkpoint',
        lambda d2l, a, f: d2l.save_checkpoint('c.ckpt', None, None, -1, None, {}),
        ValueError,
        'step',
    ),
    ('load_checkpoint', lambda d2l, a, f: d2l.load_checkpoint(None), TypeError, 'path'),
    (
        'load_pretrained_bert',
        lambda d2l, a, f: d2l.load_pretrained_bert(b'c.ckpt'),
        TypeError,
        'path',
    ),
    # a string would be split into characters, silently
    (
        'get_bert_encoding',
        lambda d2l, a, f: d2l.get_bert_encoding(None, None, 'a crane'),
        TypeError,
        'tokens_a',
    ),
    (
        'get_bert_encoding',
        lambda d2l, a, f: d2l.get_bert_encoding(None, None, ['a'], 'b c'),
        TypeError,
        'tokens_b',
    ),
    # WikiText-2
    ('wikitext2_dir', lambda d2l, a, f: d2l.wikitext2_dir(timeout=math.inf), ValueError, 'timeout'),
    ('wikitext2_dir', lambda d2l, a, f: d2l.wikitext2_dir(deadline=0), ValueError, 'deadline'),
    ('wikitext2_dir', lambda d2l, a, f: d2l.wikitext2_dir(timeout='30'), TypeError, 'timeout'),
    ('wikitext2_dir', lambda d2l, a, f: d2l.wikitext2_dir(mirrors=42), TypeError, 'mirrors'),
    (
        'wikitext2_dir',
        lambda d2l, a, f: d2l.wikitext2_dir(mirrors=['/srv/wikitext-2-v1.zip']),
        ValueError,
        'file:///srv/',
    ),
]
# MXNet-only and PyTorch-only functions
ONLY = {
    'mxnet': [
        (
            'attention_lengths',
            lambda d2l, a, f: d2l.attention_lengths(None, a([[1]]), a([1.0]), 0),
            ValueError,
            'num_heads',
        ),
        ('AddNorm', lambda d2l, a, f: d2l.AddNorm(8, -0.1), ValueError, 'dropout'),
        # MXNet would truncate 1.5 to 1 without a word
        (
            'BERTEncoder.forward',
            lambda d2l, a, f: forward(d2l, a, f, tokens=((1, 2, 3, 1.5), (5, 6, 7, 8))),
            ValueError,
            'whole numbers',
        ),
    ],
    'torch': [
        ('AddNorm', lambda d2l, a, f: d2l.AddNorm('8', 0.1), TypeError, 'norm_shape'),
        ('pack_tokens', lambda d2l, a, f: d2l.pack_tokens([[1.0]], [0]), TypeError, 'X'),
        # an embedding of float ids fails deep inside torch
        (
            'BERTEncoder.forward',
            lambda d2l, a, f: forward(
                d2l, a, f, tokens=((1.0, 2.0, 3.0, 4.0), (5.0, 6.0, 7.0, 8.0))
            ),
            TypeError,
            'integer ids',
        ),
        (
            'PositionWiseFFN',
            lambda d2l, a, f: d2l.PositionWiseFFN(8, 0, 8),
            ValueError,
            'ffn_num_hiddens',
        ),
    ],
}
CASES = [(framework, *row) for framework in FRAMEWORKS for row in BAD_CALLS + ONLY[framework]]


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch, tmp_path):
    # A call that got past its checks must not reach the network or ~/.cache.
    monkeypatch.setenv(wikitext2.MIRRORS_ENV, 'http://127.0.0.1:9/none.zip')
    monkeypatch.setenv(wikitext2.CACHE_ENV, str(tmp_path / 'cache'))


@pytest.mark.parametrize(
    'framework, function, call, error, words',
    CASES,
    ids=[f'{c[0]}-{c[1]}-{c[4]}-{i}' for i, c in enumerate(CASES)],
)
def test_bad_argument_is_named(framework, function, call, error, words):
    d2l = _module(framework)
    with pytest.raises(error) as raised:
        call(d2l, arr(framework), framework)
    message = str(raised.value)
    assert words in message
    assert function.split('.')[0] in message or function == 'wikitext2_dir'


@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_wrappers_keep_signature_and_docstring(framework):
    import inspect

    d2l = _module(framework)
    assert 'Load WikiText-2' in d2l.load_data_wiki.__doc__
    assert list(inspect.signature(d2l.load_data_wiki).parameters) == [
        'batch_size',
        'max_len',
        'seed',
    ]
    assert list(inspect.signature(d2l.BERTEncoder.forward).parameters) == [
        'self',
        'tokens',
        'segments',
        'valid_lens',
    ]


# ------------------------------------------------- corpora that give nothing


@pytest.fixture
def corpus(monkeypatch, tmp_path):
    """corpus(text or bytes) -> a D2L_WIKITEXT2_DIR holding it."""

    def make(content):
        data_dir = tmp_path / 'corpus'
        data_dir.mkdir(exist_ok=True)
        path = data_dir / 'wiki.train.tokens'
        if isinstance(content, str):
            path.write_text(content, encoding='utf-8')
        else:
            path.write_bytes(content)
        monkeypatch.setenv(wikitext2.DIR_ENV, str(data_dir))
        return data_dir

    return make


@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_corpus_without_two_sentence_paragraphs(framework, corpus):
    d2l = _module(framework)
    data_dir = corpus(' = Title = \n only one sentence here . \n another . \n')
    with pytest.raises(ValueError) as raised:
        d2l.load_data_wiki(4, 64)  # MXNet: an empty loader, training hangs
    message = str(raised.value)
    assert str(data_dir / 'wiki.train.tokens') in message
    assert 'two or more sentences' in message and "' . '" in message


@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_max_len_that_no_pair_fits(framework, corpus):
    d2l = _module(framework)
    corpus(' a b c . d e f . g h i . \n' * 3)
    with pytest.raises(ValueError, match='use max_len >= 9'):
        d2l.load_data_wiki(4, 6)


@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_corpus_with_reserved_tokens_as_words(framework, corpus):
    # '<mask>' and '<pad>' written in the text leave pairs without a token
    # that can be masked; NumPy's boolean indexing failed on them.
    # Until the chapter's fix (CHAPTER_PATCHES.md) the checks explain it; with
    # it, such pairs get no prediction. Either way, no NumPy error.
    d2l = _module(framework)
    corpus(' a <mask> . <pad> . b c . d e . \n' * 20)
    try:
        train_iter, vocab = d2l.load_data_wiki(4, 64, seed=0)
    except ValueError as error:
        assert 'no token that can be masked' in str(error)
        return
    reserved = vocab[['<pad>', '<mask>', '<cls>', '<sep>']]
    for *_, weights, labels, _ in train_iter:
        predicted = labels[weights > 0].tolist()
        assert not set(predicted) & set(reserved)


@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_corpus_that_is_not_utf8(framework, corpus):
    d2l = _module(framework)
    data_dir = corpus(' 吾輩 は 猫 . で ある . \n'.encode('cp932'))
    with pytest.raises(ValueError) as raised:
        d2l._read_wiki(data_dir)
    assert 'not UTF-8' in str(raised.value)
    assert 'Shift_JIS' in str(raised.value)


@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_pretraining_arrays_too_large_for_memory(framework, monkeypatch):
    d2l = _module(framework)
    monkeypatch.setitem(vars(d2l), 'available_memory', lambda device=None: 10**6)
    paragraphs = [['a b c', 'd e f']] * 50
    with pytest.raises(MemoryError, match='max_len=4096'):
        d2l._make_pretraining_arrays(paragraphs, 4096)
