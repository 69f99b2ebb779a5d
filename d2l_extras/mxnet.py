"""The BERT chapters' `#@save` code for mxnet, with d2l 1.0.3's utilities.

Generated from chapters/bert.md, chapters/bert-dataset.md, chapters/bert-pretraining.md, chapters/bert-distributed.md by `python -m booktools sync`: edit the chapters, not this file.
Use it as `from d2l_extras import mxnet as d2l`.
"""
from d2l_extras._mxnet_preamble import *  # noqa: F403 -- imports and runtime settings

d2l = sys.modules[__name__]  # noqa: F405 -- chapter code calls d2l.<name>


# chapters/bert.md, line 35
def try_all_gpus():
    """Return all available GPUs, or [cpu()] if there is no GPU.

    Defined in :numref:`sec_bert`.
    """
    devices = [npx.gpu(i) for i in range(npx.num_gpus())]
    return devices if devices else [npx.cpu()]


# chapters/bert.md, line 86
def get_tokens_and_segments(tokens_a, tokens_b=None):
    """Get tokens of the BERT input sequence and their segment IDs.

    Defined in :numref:`sec_bert`.
    """
    for name, tokens in (('tokens_a', tokens_a), ('tokens_b', tokens_b)):
        if name == 'tokens_b' and tokens is None:
            continue
        if (not isinstance(tokens, (list, tuple))
                or not all(isinstance(token, str) for token in tokens)):
            raise TypeError(
                f'{name} must be a list of token strings such as '
                f"['a', 'crane'], but got {type(tokens).__name__} "
                f'{str(tokens)[:40]!r}; split the text into tokens first, '
                f'e.g. with text.split() or d2l.tokenize')
    tokens = ['<cls>', *tokens_a, '<sep>']
    # 0 and 1 mark the tokens of the first and the second text
    segments = [0] * len(tokens)
    if tokens_b is not None:
        tokens += [*tokens_b, '<sep>']
        segments += [1] * (len(tokens_b) + 1)
    return tokens, segments


# chapters/bert.md, line 156
def attention_lengths(F, tokens, valid_lens, num_heads):
    """Number of valid keys for every (example, head, query), as
    `npx.softmax(..., length=...)` expects: (batch_size, num_heads, num_steps).

    Defined in :numref:`sec_bert`.
    """
    per_query = F.np.zeros_like(tokens).astype('float32') + F.np.expand_dims(
        valid_lens, 1)
    per_head = F.np.repeat(F.np.expand_dims(per_query, 1), num_heads, axis=1)
    return per_head.astype('int32')

class MultiHeadSelfAttention(nn.HybridBlock):
    """Multi-head self-attention with masking of padded keys.

    Defined in :numref:`sec_bert`.
    """
    def __init__(self, num_hiddens, num_heads, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        if num_hiddens % num_heads != 0:
            raise ValueError(
                f'num_hiddens={num_hiddens} must be divisible by num_heads='
                f'{num_heads}: each head gets num_hiddens / num_heads features')
        self.num_heads = num_heads
        self.scale = (num_hiddens // num_heads) ** -0.5
        self.W_q = nn.Dense(num_hiddens, use_bias=use_bias, flatten=False,
                            in_units=num_hiddens)
        self.W_k = nn.Dense(num_hiddens, use_bias=use_bias, flatten=False,
                            in_units=num_hiddens)
        self.W_v = nn.Dense(num_hiddens, use_bias=use_bias, flatten=False,
                            in_units=num_hiddens)
        self.W_o = nn.Dense(num_hiddens, use_bias=use_bias, flatten=False,
                            in_units=num_hiddens)

    def split_heads(self, F, X):
        # (batch_size, num_steps, num_hiddens) ->
        # (batch_size, num_heads, num_steps, num_hiddens / num_heads)
        X = F.npx.reshape(X, (-2, -2, self.num_heads, -1))
        return F.np.transpose(X, (0, 2, 1, 3))

    def hybrid_forward(self, F, X, attn_lengths):
        # Shape of `X`: (batch_size, num_steps, `num_hiddens`)
        queries, keys, values = [self.split_heads(F, W(X))
                                 for W in (self.W_q, self.W_k, self.W_v)]
        scores = F.npx.batch_dot(queries, keys, transpose_b=True) * self.scale
        # Softmax over the first `attn_lengths` keys only (weight 0 elsewhere)
        weights = F.npx.softmax(scores, length=attn_lengths, use_length=True,
                                axis=-1)
        output = F.np.transpose(F.npx.batch_dot(weights, values), (0, 2, 1, 3))
        # Concatenate the heads: (batch_size, num_steps, num_hiddens)
        return self.W_o(F.npx.reshape(output, (-2, -2, -1)))


# chapters/bert.md, line 248
class PositionWiseFFN(nn.HybridBlock):
    """The positionwise feed-forward network.

    Defined in :numref:`sec_bert`.
    """
    def __init__(self, num_hiddens, ffn_num_hiddens, **kwargs):
        super().__init__(**kwargs)
        self.dense1 = nn.Dense(ffn_num_hiddens, activation='relu',
                               flatten=False, in_units=num_hiddens)
        self.dense2 = nn.Dense(num_hiddens, flatten=False,
                               in_units=ffn_num_hiddens)

    def hybrid_forward(self, F, X):
        return self.dense2(self.dense1(X))

class AddNorm(nn.HybridBlock):
    """Residual connection followed by layer normalization.

    Defined in :numref:`sec_bert`.
    """
    def __init__(self, num_hiddens, dropout, **kwargs):
        super().__init__(**kwargs)
        self.dropout = nn.Dropout(dropout)
        self.ln = nn.LayerNorm(in_channels=num_hiddens)

    def hybrid_forward(self, F, X, Y):
        return self.ln(self.dropout(Y) + X)

class EncoderBlock(nn.HybridBlock):
    """A Transformer encoder block.

    Defined in :numref:`sec_bert`.
    """
    def __init__(self, num_hiddens, ffn_num_hiddens, num_heads, dropout,
                 **kwargs):
        super().__init__(**kwargs)
        self.attention = MultiHeadSelfAttention(num_hiddens, num_heads)
        self.addnorm1 = AddNorm(num_hiddens, dropout)
        self.ffn = PositionWiseFFN(num_hiddens, ffn_num_hiddens)
        self.addnorm2 = AddNorm(num_hiddens, dropout)

    def hybrid_forward(self, F, X, attn_lengths):
        Y = self.addnorm1(X, self.attention(X, attn_lengths))
        return self.addnorm2(Y, self.ffn(Y))


# chapters/bert.md, line 398
def check_bert_inputs(tokens, segments, valid_lens, max_len):
    """Check the inputs of a BERT encoder; return float32 `valid_lens` of
    shape (batch_size,) (all positions are valid if `valid_lens` is None).

    Defined in :numref:`sec_bert`.
    """
    if tokens.ndim != 2:
        raise ValueError(
            f'tokens must have shape (batch_size, num_steps), got shape '
            f'{tokens.shape}; add a batch axis with np.expand_dims(tokens, 0)')
    batch_size, num_steps = tokens.shape
    if segments.shape != tokens.shape:
        raise ValueError(f'segments must have the shape of tokens '
                         f'{tokens.shape}, got {segments.shape}')
    if num_steps > max_len:
        raise ValueError(
            f'the token sequences have {num_steps} positions, but this BERT '
            f'encoder has positional embeddings for max_len={max_len} '
            f'positions only; truncate the sequences to at most {max_len} '
            f'tokens, or build the model with max_len >= {num_steps}')
    if valid_lens is None:
        return np.full((batch_size,), num_steps, ctx=tokens.ctx)
    if valid_lens.size != batch_size:
        raise ValueError(f'valid_lens must hold one length per sequence, i.e. '
                         f'have shape ({batch_size},), got {valid_lens.shape}')
    valid_lens = valid_lens.reshape(-1).astype('float32').as_in_ctx(tokens.ctx)
    lowest, highest = float(valid_lens.min()), float(valid_lens.max())
    if lowest < 1 or highest > num_steps:
        raise ValueError(
            f'valid_lens counts the non-padding tokens of each sequence, so it '
            f'must lie in [1, num_steps={num_steps}]; got values from '
            f'{lowest:g} to {highest:g}')
    return valid_lens

class BERTEncoder(nn.HybridBlock):
    """BERT encoder.

    Defined in :numref:`sec_bert`.
    """
    def __init__(self, vocab_size, num_hiddens, ffn_num_hiddens, num_heads,
                 num_layers, dropout, max_len=1000, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.max_len = num_heads, max_len
        self.token_embedding = nn.Embedding(vocab_size, num_hiddens)
        self.segment_embedding = nn.Embedding(2, num_hiddens)
        self.blks = nn.HybridSequential()
        for _ in range(num_layers):
            self.blks.add(EncoderBlock(num_hiddens, ffn_num_hiddens, num_heads,
                                       dropout))
        # In BERT, positional embeddings are learnable, thus we create a
        # parameter of positional embeddings that are long enough
        self.pos_embedding = self.params.get('pos_embedding',
                                             shape=(1, max_len, num_hiddens))

    def forward(self, tokens, segments, valid_lens=None):
        # Checks in Python, before the (possibly hybridized) computation
        valid_lens = check_bert_inputs(tokens, segments, valid_lens,
                                       self.max_len)
        return super().forward(tokens, segments, valid_lens)

    def hybrid_forward(self, F, tokens, segments, valid_lens, pos_embedding):
        # Shape of `positions`: (batch_size, num_steps), the index of each step
        positions = F.np.zeros_like(tokens) + F.npx.arange_like(tokens, axis=1)
        pos_table = F.npx.reshape(pos_embedding, (-3, -2, -2))  # drop axis 0
        X = (self.token_embedding(tokens) + self.segment_embedding(segments)
             + F.np.take(pos_table, positions, axis=0))
        attn_lengths = attention_lengths(F, tokens, valid_lens, self.num_heads)
        for blk in self.blks:
            X = blk(X, attn_lengths)
        # Zeros at the padding positions, like the PyTorch version
        return F.npx.sequence_mask(X, valid_lens, use_sequence_length=True,
                                   axis=1)


# chapters/bert.md, line 635
class MaskLM(nn.HybridBlock):
    """The masked language model task of BERT.

    Defined in :numref:`sec_bert`.
    """
    def __init__(self, vocab_size, num_hiddens, **kwargs):
        super().__init__(**kwargs)
        self.mlp = nn.HybridSequential()
        self.mlp.add(nn.Dense(num_hiddens, activation='relu', flatten=False,
                              in_units=num_hiddens))
        self.mlp.add(nn.LayerNorm(in_channels=num_hiddens))
        self.mlp.add(nn.Dense(vocab_size, flatten=False, in_units=num_hiddens))

    def forward(self, X, pred_positions):
        if pred_positions.ndim != 2 or pred_positions.shape[0] != X.shape[0]:
            raise ValueError(
                f'pred_positions must have shape (batch_size={X.shape[0]}, '
                f'no. of predictions), got {pred_positions.shape}')
        if pred_positions.size and not (
                0 <= float(pred_positions.min())
                and float(pred_positions.max()) < X.shape[1]):
            raise ValueError(f'pred_positions must lie in [0, num_steps='
                             f'{X.shape[1]}); got values outside')
        return super().forward(X, pred_positions)

    def hybrid_forward(self, F, X, pred_positions):
        # `batch_idx[i, j]` = i, so that (batch_idx, pred_positions) pick
        # the rows X[i, pred_positions[i, j]] of all examples at once
        batch_idx = F.np.zeros_like(pred_positions) + F.np.expand_dims(
            F.npx.arange_like(pred_positions, axis=0), 1)
        masked_X = F.npx.gather_nd(X, F.np.stack([batch_idx, pred_positions]))
        return self.mlp(masked_X)


# chapters/bert.md, line 744
class NextSentencePred(nn.HybridBlock):
    """The next sentence prediction task of BERT.

    Defined in :numref:`sec_bert`.
    """
    def __init__(self, num_inputs, **kwargs):
        super().__init__(**kwargs)
        self.output = nn.Dense(2, in_units=num_inputs)

    def hybrid_forward(self, F, X):
        # `X` shape: (batch size, `num_hiddens`)
        return self.output(X)


# chapters/bert.md, line 811
class BERTModel(nn.Block):
    """The BERT model.

    Defined in :numref:`sec_bert`.
    """
    def __init__(self, vocab_size, num_hiddens, ffn_num_hiddens, num_heads,
                 num_layers, dropout, max_len=1000, **kwargs):
        super().__init__(**kwargs)
        self.encoder = BERTEncoder(vocab_size, num_hiddens, ffn_num_hiddens,
                                   num_heads, num_layers, dropout, max_len)
        self.hidden = nn.Dense(num_hiddens, activation='tanh',
                               in_units=num_hiddens)
        self.mlm = MaskLM(vocab_size, num_hiddens)
        self.nsp = NextSentencePred(num_hiddens)
        # Run every HybridBlock inside as one computation graph (see the text)
        self.hybridize()

    def forward(self, tokens, segments, valid_lens=None, pred_positions=None):
        encoded_X = self.encoder(tokens, segments, valid_lens)
        if pred_positions is not None:
            mlm_Y_hat = self.mlm(encoded_X, pred_positions)
        else:
            mlm_Y_hat = None
        # The hidden layer of the MLP classifier for next sentence prediction.
        # Position 0 holds the '<cls>' token
        nsp_Y_hat = self.nsp(self.hidden(encoded_X[:, 0, :]))
        return encoded_X, mlm_Y_hat, nsp_Y_hat


# chapters/bert.md, line 933
def format_bytes(num_bytes):
    """Format a number of bytes for humans, e.g. 1.5 GiB.

    Defined in :numref:`sec_bert`.
    """
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if num_bytes < 1024:
            return f'{num_bytes:.1f} {unit}'
        num_bytes /= 1024
    return f'{num_bytes:.1f} TiB'

class BERTMemoryEstimate(dict):
    """Estimated bytes of one BERT training step with Adam, term by term.

    Defined in :numref:`sec_bert`.
    """
    LABELS = {'parameters': 'パラメータ', 'gradients': '勾配',
              'adam_states': 'Adam の状態',
              'attention_scores': '活性化: 自己注意のスコア',
              'layer_activations': '活性化: 各層のその他',
              'mlm_outputs': '活性化: マスク言語モデリングの出力'}

    def __init__(self, terms, num_parameters, config):
        super().__init__(terms)
        self.num_parameters, self.config = num_parameters, config

    @property
    def total(self):
        return sum(self.values())

    @property
    def activations(self):
        return (self['attention_scores'] + self['layer_activations']
                + self['mlm_outputs'])

    @property
    def dominant(self):
        """The largest term."""
        return max(self, key=self.get)

    def __str__(self):
        config = ', '.join(f'{k}={v}' for k, v in self.config.items())
        lines = [f'BERT ({config}): {self.num_parameters:,} parameters']
        for name, num_bytes in self.items():
            mark = '  <- largest' if name == self.dominant else ''
            lines.append(f'{format_bytes(num_bytes):>12} {num_bytes / self.total:6.1%}'
                         f'  {self.LABELS[name]}{mark}')
        lines.append(f'{format_bytes(self.total):>12} {1:6.1%}  合計')
        return '\n'.join(lines)

    __repr__ = __str__

def estimate_bert_memory(vocab_size, num_hiddens, ffn_num_hiddens, num_heads,
                         num_layers, batch_size, max_len, num_mlm_preds=None,
                         bytes_per_value=4):
    """Estimate the memory of one training step of `BERTModel` with Adam,
    for sequences padded to `max_len`, without allocating anything.

    Defined in :numref:`sec_bert`.
    """
    V, H, F, h, L = (vocab_size, num_hiddens, ffn_num_hiddens, num_heads,
                     num_layers)
    B, T = batch_size, max_len
    # 15% of the tokens are predicted, as in the pretraining data
    P = round(T * 0.15) if num_mlm_preds is None else num_mlm_preds
    embeddings = V * H + 2 * H + T * H
    per_layer = 4 * (H * H + H) + (H * F + F) + (F * H + H) + 2 * 2 * H
    nsp = (H * H + H) + (H * 2 + 2)
    mlm = (H * H + H) + 2 * H + (H * V + V)
    num_parameters = embeddings + L * per_layer + nsp + mlm
    N = B * T  # tokens per batch
    values = {
        'parameters': num_parameters,
        'gradients': num_parameters,
        'adam_states': 2 * num_parameters,
        'attention_scores': L * 2 * B * h * T * T,
        'layer_activations': L * (10 * N * H + N * F),
        'mlm_outputs': B * P * (4 * V + 4 * H)}
    config = dict(vocab_size=V, num_hiddens=H, ffn_num_hiddens=F,
                  num_heads=h, num_layers=L, batch_size=B, max_len=T)
    return BERTMemoryEstimate(
        {name: count * bytes_per_value for name, count in values.items()},
        num_parameters, config)


# chapters/bert.md, line 1063
def _device_kind_and_index(device):
    """('cpu' | 'cuda' | 'gpu', index) of a PyTorch or MXNet device or a
    string such as 'cpu', 'cuda:0' or 'gpu(0)'.

    Defined in :numref:`sec_bert`.
    """
    if device is None:
        return 'cpu', None
    if hasattr(device, 'device_type'):  # an MXNet context
        return device.device_type.replace('cpu_pinned', 'cpu'), device.device_id
    if hasattr(device, 'type'):  # a torch.device
        return device.type, device.index
    if isinstance(device, str):
        name = device.strip().lower().replace('(', ':').rstrip(')')
        kind, _, index = name.partition(':')
        return kind, int(index) if index else None
    raise TypeError(f'pass one device (e.g. torch.device, mx.gpu(0) or '
                    f"'cuda:0'), not {type(device).__name__}")

def available_memory(device=None):
    """Free memory in bytes: the machine's available RAM for None or a CPU
    device, otherwise the free memory of the given GPU.

    Defined in :numref:`sec_bert`.
    """
    kind, index = _device_kind_and_index(device)
    if kind == 'cpu':
        import psutil
        return psutil.virtual_memory().available
    if kind == 'cuda':
        import torch
        return torch.cuda.mem_get_info(index)[0]
    if kind == 'gpu':
        import mxnet
        return mxnet.context.gpu_memory_info(index or 0)[0]
    raise ValueError(f'unknown device {device!r}: use a CPU or a GPU device')

def check_bert_fits(vocab_size, num_hiddens, ffn_num_hiddens, num_heads,
                    num_layers, batch_size, max_len, num_mlm_preds=None,
                    bytes_per_value=4, device=None):
    """Raise MemoryError before training if one BERT training step would not
    fit into the free memory of `device`; otherwise return the estimate.

    Defined in :numref:`sec_bert`.
    """
    estimate = estimate_bert_memory(
        vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_layers,
        batch_size, max_len, num_mlm_preds, bytes_per_value)
    available = available_memory(device)
    if estimate.total <= available:
        return estimate
    largest = estimate.dominant
    fixed = (estimate['parameters'] + estimate['gradients']
             + estimate['adam_states'])
    if fixed >= available:
        advice = (f'the parameters, gradients and Adam states alone need '
                  f'{format_bytes(fixed)}: reduce num_layers, num_hiddens or '
                  f'vocab_size, or use a device with more memory')
    else:
        advice = {
            'attention_scores': 'it grows with max_len**2, so reduce max_len '
                                'first, then batch_size',
            'layer_activations': 'it grows with batch_size * max_len, so '
                                 'reduce batch_size or max_len',
            'mlm_outputs': 'it grows with batch_size * max_len * vocab_size, '
                           'so reduce batch_size (or the vocabulary)'}.get(
            largest, 'reduce num_layers, num_hiddens or vocab_size')
        # Activations grow linearly with the batch size
        max_batch_size = int((available - fixed)
                             // (estimate.activations / batch_size))
        if max_batch_size >= 1:
            advice += (f'; batch_size <= {max_batch_size} would fit at '
                       f'max_len={max_len}')
    raise MemoryError(
        f'one BERT training step needs about {format_bytes(estimate.total)} '
        f'but only {format_bytes(available)} is free on '
        f'{device if device is not None else "this machine (CPU)"}. '
        f'The largest term is {largest} ({format_bytes(estimate[largest])}, '
        f'{estimate[largest] / estimate.total:.0%}): {advice}.')


# chapters/bert-dataset.md, line 25 (:numref:`sec_bert-dataset`)
import contextlib
import gc
import pathlib

import numpy as onp

from d2l_extras.wikitext2 import wikitext2_dir


# chapters/bert-dataset.md, line 44
def _read_wiki(data_dir):
    """Return the paragraphs of `wiki.train.tokens` in `data_dir`.

    Every paragraph is a list of at least two lowercase sentence strings.

    Defined in :numref:`sec_bert-dataset`.
    """
    file_name = pathlib.Path(data_dir) / 'wiki.train.tokens'
    if not file_name.is_file():
        raise FileNotFoundError(
            f'{file_name} がありません (no such file). WikiText-2 の '
            'wiki.train.tokens をこのディレクトリに置くか、それを含む'
            'ディレクトリを環境変数 D2L_WIKITEXT2_DIR に指定してください '
            '(put wiki.train.tokens there, or point D2L_WIKITEXT2_DIR at a '
            'directory that holds it).')
    paragraphs = []
    with open(file_name, encoding='utf-8') as f:
        for line in f:
            # ' . ' ends a sentence; empty pieces (e.g. after the last
            # period) are dropped
            sentences = [sentence.strip()
                         for sentence in line.lower().split(' . ')
                         if sentence.strip()]
            # Next sentence prediction needs at least two sentences
            if len(sentences) >= 2:
                paragraphs.append(sentences)
    return paragraphs


# chapters/bert-dataset.md, line 100
def _get_nsp_examples(paragraphs, max_len, rng):
    """Make (tokens, segments, is_next) examples for next sentence prediction.

    `paragraphs` is a list of paragraphs; a paragraph is a list of sentences;
    a sentence is a list of tokens.

    Defined in :numref:`sec_bert-dataset`.
    """
    all_sentences = [sentence for paragraph in paragraphs
                     for sentence in paragraph]
    # Every pair of consecutive sentences of a paragraph
    pairs = [(sentence_a, next_sentence) for paragraph in paragraphs
             for sentence_a, next_sentence in zip(paragraph, paragraph[1:])]
    # All random numbers at once: one NumPy call instead of one per pair
    all_is_next = (rng.random(len(pairs)) < 0.5).tolist()
    random_picks = rng.integers(len(all_sentences), size=len(pairs)).tolist()
    examples = []
    for (sentence_a, next_sentence), is_next, pick in zip(
            pairs, all_is_next, random_picks):
        # The true next sentence, or one drawn uniformly from the corpus
        sentence_b = next_sentence if is_next else all_sentences[pick]
        # 1 '<cls>' token and 2 '<sep>' tokens are added
        if len(sentence_a) + len(sentence_b) + 3 > max_len:
            continue
        tokens, segments = d2l.get_tokens_and_segments(sentence_a, sentence_b)
        examples.append((tokens, segments, is_next))
    return examples


# chapters/bert-dataset.md, line 155
def _pad_bert_inputs(examples, max_len, vocab):
    """Stack NSP examples into NumPy arrays padded with '<pad>' to max_len.

    Defined in :numref:`sec_bert-dataset`.
    """
    lengths = onp.array([len(tokens) for tokens, _, _ in examples])
    # is_token[i, j]: position j of example i holds a token, not padding
    is_token = onp.arange(max_len) < lengths[:, None]
    all_tokens = [token for tokens, _, _ in examples for token in tokens]
    all_segments = [s for _, segments, _ in examples for s in segments]
    token_ids = onp.full(is_token.shape, vocab['<pad>'], dtype=onp.int64)
    # A plain dict lookup per token; vocab[all_tokens] would make a method
    # call per token and take several times longer
    token_to_idx, unk = vocab.token_to_idx, vocab.unk
    token_ids[is_token] = [token_to_idx.get(token, unk)  # fills row by row
                           for token in all_tokens]
    segments = onp.zeros(is_token.shape, dtype=onp.int64)
    segments[is_token] = all_segments
    valid_lens = lengths.astype(onp.float32)
    nsp_labels = onp.array([is_next for _, _, is_next in examples],
                           dtype=onp.int64)
    return token_ids, segments, valid_lens, nsp_labels


# chapters/bert-dataset.md, line 205
def _mask_tokens(token_ids, vocab, rng):
    """Choose the masked language modeling predictions of all examples.

    Returns (mlm_input_ids, pred_positions, mlm_weights, mlm_labels).

    Defined in :numref:`sec_bert-dataset`.
    """
    num_examples, max_len = token_ids.shape
    max_num_preds = round(max_len * 0.15)
    special_tokens = ['<pad>', '<mask>', '<cls>', '<sep>']
    is_candidate = ~onp.isin(token_ids, vocab[special_tokens])
    num_candidates = is_candidate.sum(axis=1)
    # 15% of the non-special tokens of each example, at least one (none if
    # it has none: the corpus may hold '<mask>' or '<pad>' as words)
    num_preds = onp.minimum(num_candidates, onp.maximum(
        1, onp.round(0.15 * num_candidates))).astype(onp.int64)
    # The num_preds smallest random keys of a row mark its prediction
    # positions; key 2 (larger than any random key) excludes special tokens
    keys = onp.where(is_candidate, rng.random(token_ids.shape), 2.0)
    kth_smallest_key = onp.sort(keys, axis=1)[
        onp.arange(num_examples), onp.maximum(num_preds - 1, 0)]
    # Row and column of every prediction, row by row (columns ascending)
    rows, cols = onp.nonzero((keys <= kth_smallest_key[:, None])
                             & is_candidate)
    # The first num_preds slots of each row are real, the rest padding
    is_real_slot = onp.arange(max_num_preds) < num_preds[:, None]
    mlm_weights = is_real_slot.astype(onp.float32)
    pred_positions = onp.zeros(is_real_slot.shape, dtype=onp.int64)
    pred_positions[is_real_slot] = cols
    mlm_labels = onp.full(is_real_slot.shape, vocab['<pad>'], dtype=onp.int64)
    mlm_labels[is_real_slot] = token_ids[rows, cols]
    # 80%: '<mask>', 10%: a random non-special token, 10%: unchanged
    mlm_input_ids = token_ids.copy()
    choice = rng.random(len(rows))
    use_mask, use_random = choice < 0.8, (choice >= 0.8) & (choice < 0.9)
    mlm_input_ids[rows[use_mask], cols[use_mask]] = vocab['<mask>']
    ordinary_ids = [idx for idx, token in enumerate(vocab.idx_to_token)
                    if token not in special_tokens]
    mlm_input_ids[rows[use_random], cols[use_random]] = rng.choice(
        ordinary_ids, use_random.sum())
    return mlm_input_ids, pred_positions, mlm_weights, mlm_labels


# chapters/bert-dataset.md, line 271
def _make_pretraining_arrays(paragraphs, max_len, seed=None, vocab=None):
    """Return the vocabulary and the 7 NumPy arrays of pretraining examples.

    The vocabulary is made from `paragraphs` unless one is given.

    Defined in :numref:`sec_bert-dataset`.
    """
    if max_len < 5:
        raise ValueError(f'max_len={max_len} is too small: a sentence pair '
                         'needs at least 5 tokens (<cls> a <sep> b <sep>)')
    rng = onp.random.default_rng(seed)
    # Each sentence becomes a list of tokens
    paragraphs = [d2l.tokenize(paragraph, token='word')
                  for paragraph in paragraphs]
    sentences = [sentence for paragraph in paragraphs
                 for sentence in paragraph]
    if vocab is None:
        vocab = d2l.Vocab(sentences, min_freq=5, reserved_tokens=[
            '<pad>', '<mask>', '<cls>', '<sep>'])
    examples = _get_nsp_examples(paragraphs, max_len, rng)
    token_ids, segments, valid_lens, nsp_labels = _pad_bert_inputs(
        examples, max_len, vocab)
    mlm_input_ids, pred_positions, mlm_weights, mlm_labels = _mask_tokens(
        token_ids, vocab, rng)
    return vocab, (mlm_input_ids, segments, valid_lens, pred_positions,
                   mlm_weights, mlm_labels, nsp_labels)


# chapters/bert-dataset.md, line 315
class _WikiTextDataset(gluon.data.Dataset):
    """Pretraining examples for masked language modeling and NSP.

    Defined in :numref:`sec_bert-dataset`.
    """
    def __init__(self, paragraphs, max_len, seed=None, vocab=None):
        self.vocab, arrays = _make_pretraining_arrays(paragraphs, max_len,
                                                      seed, vocab)
        # IDs, segments, positions and labels as int32, MXNet's usual index
        # type; valid lengths and MLM weights stay float32
        self.arrays = [a.astype(onp.int32) if a.dtype == onp.int64 else a
                       for a in arrays]

    def __getitem__(self, idx):
        return tuple(array[idx] for array in self.arrays)

    def __len__(self):
        return len(self.arrays[0])


# chapters/bert-dataset.md, line 368
@contextlib.contextmanager
def _gc_paused():
    """Pause Python's cyclic garbage collector inside a `with` block.

    Defined in :numref:`sec_bert-dataset`.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# chapters/bert-dataset.md, line 387
def load_data_wiki(batch_size, max_len, seed=None):
    """Load WikiText-2 as BERT pretraining examples; return (iter, vocab).

    Defined in :numref:`sec_bert-dataset`.
    """
    data_dir = d2l.wikitext2_dir()
    # Many small lists but no reference cycles: see _gc_paused
    with _gc_paused():
        train_set = _WikiTextDataset(_read_wiki(data_dir), max_len, seed)
    train_iter = gluon.data.DataLoader(train_set, batch_size, shuffle=True,
                                       num_workers=0)
    return train_iter, train_set.vocab


# chapters/bert-pretraining.md, line 66
def _get_batch_loss_bert(net, loss, vocab_size, tokens_X_shards,
                         segments_X_shards, valid_lens_x_shards,
                         pred_positions_X_shards, mlm_weights_X_shards,
                         mlm_Y_shards, nsp_y_shards):
    """Defined in :numref:`sec_bert-pretraining`."""
    mlm_ls, nsp_ls, ls = [], [], []
    for (tokens_X_shard, segments_X_shard, valid_lens_x_shard,
         pred_positions_X_shard, mlm_weights_X_shard, mlm_Y_shard,
         nsp_y_shard) in zip(
        tokens_X_shards, segments_X_shards, valid_lens_x_shards,
        pred_positions_X_shards, mlm_weights_X_shards, mlm_Y_shards,
        nsp_y_shards):
        # Forward pass
        _, mlm_Y_hat, nsp_Y_hat = net(
            tokens_X_shard, segments_X_shard, valid_lens_x_shard.reshape(-1),
            pred_positions_X_shard)
        # Compute masked language model loss
        mlm_l = loss(
            mlm_Y_hat.reshape((-1, vocab_size)), mlm_Y_shard.reshape(-1),
            mlm_weights_X_shard.reshape((-1, 1)))
        mlm_l = mlm_l.sum() / (mlm_weights_X_shard.sum() + 1e-8)
        # Compute next sentence prediction loss
        nsp_l = loss(nsp_Y_hat, nsp_y_shard)
        nsp_l = nsp_l.mean()
        mlm_ls.append(mlm_l)
        nsp_ls.append(nsp_l)
        ls.append(mlm_l + nsp_l)
        npx.waitall()
    return mlm_ls, nsp_ls, ls


# chapters/bert-pretraining.md, line 244
import numpy as onp

def split_paragraphs(paragraphs, heldout_fraction=0.1, seed=0):
    """Split paragraphs at random into (training, held-out) lists.

    Defined in :numref:`sec_bert-pretraining`.
    """
    order = onp.random.default_rng(seed).permutation(len(paragraphs))
    is_heldout = onp.zeros(len(paragraphs), dtype=bool)
    is_heldout[order[:round(len(paragraphs) * heldout_fraction)]] = True
    return ([p for p, held in zip(paragraphs, is_heldout) if not held],
            [p for p, held in zip(paragraphs, is_heldout) if held])


# chapters/bert-pretraining.md, line 260
def make_wiki_iter(paragraphs, batch_size, max_len, vocab, seed=0,
                   shuffle=True):
    """Minibatches of pretraining examples made from `paragraphs` with
    `vocab`; `seed` draws the sentence pairs, the masks and the order.

    Defined in :numref:`sec_bert-pretraining`.
    """
    dataset = _WikiTextDataset(paragraphs, max_len, seed, vocab)
    order = onp.arange(len(dataset))
    if shuffle:
        order = onp.random.default_rng(seed).permutation(len(dataset))
    batches = [order[i:i + batch_size].tolist()
               for i in range(0, len(order), batch_size)]
    return gluon.data.DataLoader(dataset, batch_sampler=batches)


# chapters/bert-pretraining.md, line 305
def evaluate_bert(net, data_iter, vocab_size):
    """MLM loss and accuracy (mean over the prediction positions) and NSP
    loss and accuracy (mean over the sentence pairs), in inference mode.

    Defined in :numref:`sec_bert-pretraining`.
    """
    loss = gluon.loss.SoftmaxCELoss()
    device = list(net.collect_params().values())[0].list_ctx()[0]
    # Sums of the MLM loss, correct MLM predictions, no. of predictions,
    # NSP loss, correct NSP predictions, no. of sentence pairs
    metric = d2l.Accumulator(6)
    for batch in data_iter:  # Outside autograd.record(): no dropout
        (tokens, segments, valid_lens, pred_positions, mlm_weights, mlm_Y,
         nsp_y) = [x.as_in_ctx(device) for x in batch]
        _, mlm_Y_hat, nsp_Y_hat = net(tokens, segments, valid_lens,
                                      pred_positions)
        mlm_Y_hat = mlm_Y_hat.reshape((-1, vocab_size))
        mlm_Y, weights = mlm_Y.reshape(-1), mlm_weights.reshape(-1)
        mlm_correct = mlm_Y_hat.argmax(axis=1).astype(mlm_Y.dtype) == mlm_Y
        nsp_correct = nsp_Y_hat.argmax(axis=1).astype(nsp_y.dtype) == nsp_y
        metric.add(float((loss(mlm_Y_hat, mlm_Y) * weights).sum()),
                   float((mlm_correct * weights).sum()), float(weights.sum()),
                   float(loss(nsp_Y_hat, nsp_y).sum()),
                   float(nsp_correct.sum()), nsp_y.shape[0])
    return {'MLM loss': metric[0] / metric[2],
            'MLM accuracy': metric[1] / metric[2],
            'NSP loss': metric[3] / metric[5],
            'NSP accuracy': metric[4] / metric[5]}


# chapters/bert-pretraining.md, line 369
def unigram_counts(vocab):
    """How often each token of `vocab` occurs in the corpus that `vocab`
    was made from; rare words count as '<unk>'.

    Defined in :numref:`sec_bert-pretraining`.
    """
    counts = onp.zeros(len(vocab))
    for token, freq in vocab.token_freqs:
        counts[vocab[token]] += freq
    return counts

def mlm_labels(data_iter):
    """The labels of all real (not padded) prediction positions.

    Defined in :numref:`sec_bert-pretraining`.
    """
    return onp.concatenate([d2l.numpy(batch[5])[d2l.numpy(batch[4]) > 0]
                            for batch in data_iter])


# chapters/bert-pretraining.md, line 388
def _original_tokens(tokens, pred_positions, mlm_weights, mlm_Y):
    """Token IDs (NumPy) with every prediction position's label put back.

    Defined in :numref:`sec_bert-pretraining`.
    """
    tokens = tokens.copy()
    rows, slots = onp.nonzero(mlm_weights > 0)
    tokens[rows, pred_positions[rows, slots]] = mlm_Y[rows, slots]
    return tokens


# chapters/bert-pretraining.md, line 399
def token_encodings(net, batch, vocab, context_free=False):
    """BERT encodings of the ordinary tokens of a minibatch (masks undone)
    as a NumPy array (no. of tokens, num_hiddens), and their token IDs.

    Defined in :numref:`sec_bert-pretraining`.
    """
    tokens, segments, valid_lens, pred_positions, mlm_weights, mlm_Y, _ = [
        d2l.numpy(x) for x in batch]
    tokens = _original_tokens(tokens, pred_positions, mlm_weights, mlm_Y)
    device = list(net.collect_params().values())[0].list_ctx()[0]
    X = np.array(tokens, ctx=device)
    if context_free:  # The token embedding: one vector per token
        encoded = net.encoder.token_embedding(X)
    else:  # Outside autograd.record(): no dropout
        encoded, _, _ = net(X, np.array(segments, ctx=device),
                            np.array(valid_lens, ctx=device))
    is_word = ((onp.arange(tokens.shape[1]) < valid_lens[:, None])
               & ~onp.isin(tokens, vocab[['<pad>', '<mask>', '<cls>',
                                          '<sep>', '<unk>']]))
    return encoded.asnumpy()[is_word], tokens[is_word]


# chapters/bert-pretraining.md, line 446
def mean_cosine(X):
    """Mean cosine similarity of all pairs of rows of X (NumPy).

    Defined in :numref:`sec_bert-pretraining`.
    """
    U = X / onp.linalg.norm(X, axis=1, keepdims=True)
    total, n = U.sum(axis=0), len(U)
    return float((total @ total - n) / (n * (n - 1)))

def context_similarities(X, token_ids, min_count=5, num_pairs=20000, seed=0):
    """(same word in different contexts, different words): mean cosine
    similarities of the rows of X, the encodings of `token_ids`.

    Defined in :numref:`sec_bert-pretraining`.
    """
    words, counts = onp.unique(token_ids, return_counts=True)
    same = [mean_cosine(X[token_ids == word])
            for word in words[counts >= min_count]]
    i, j = onp.random.default_rng(seed).integers(len(X), size=(2, num_pairs))
    i, j = i[token_ids[i] != token_ids[j]], j[token_ids[i] != token_ids[j]]
    U = X / onp.linalg.norm(X, axis=1, keepdims=True)
    return float(onp.mean(same)), float((U[i] * U[j]).sum(axis=1).mean())


# chapters/bert-pretraining.md, line 715
from mxnet import lr_scheduler

def pretrain_bert(net, paragraphs, vocab, num_steps, lr=1e-3,
                  batch_size=128, max_len=64, warmup_fraction=0.1, seed=0,
                  stop_at=None, on_step=None):
    """Pretrain with Adam; the learning rate grows linearly to `lr` over the
    first `warmup_fraction` of the steps, then falls linearly to 0. Every
    epoch draws new sentence pairs and masks. `on_step(step, mlm_l, nsp_l)`
    is called after every step; training stops early at step `stop_at`.

    Defined in :numref:`sec_bert-pretraining`.
    """
    loss = gluon.loss.SoftmaxCELoss()
    device = list(net.collect_params().values())[0].list_ctx()[0]
    warmup = max(1, round(num_steps * warmup_fraction))
    schedule = lr_scheduler.PolyScheduler(max_update=num_steps, base_lr=lr,
                                          pwr=1, warmup_steps=warmup)
    trainer = gluon.Trainer(net.collect_params(), 'adam',
                            {'learning_rate': lr, 'lr_scheduler': schedule})
    step, epoch = 0, 0
    while step < (stop_at or num_steps):
        # New pairs and masks every epoch (dynamic masking)
        for batch in make_wiki_iter(paragraphs, batch_size, max_len, vocab,
                                    seed + epoch):
            shards = [[x.as_in_ctx(device)] for x in batch]
            with autograd.record():
                mlm_ls, nsp_ls, ls = _get_batch_loss_bert(
                    net, loss, len(vocab), *shards)
            ls[0].backward()
            trainer.step(1)
            step += 1
            if on_step:
                on_step(step, float(mlm_ls[0]), float(nsp_ls[0]))
            if step == (stop_at or num_steps):
                break
        epoch += 1
    return step


# chapters/bert-pretraining.md, line 802
def book_checkpoint(framework):
    """The checkpoint of the small BERT that comes with the book.

    Defined in :numref:`sec_bert-pretraining`.
    """
    return (pathlib.Path(d2l.__file__).parent / 'checkpoints'
            / f'bert-small-{framework}.ckpt')


# chapters/bert-pretraining.md, line 883
def fill_mask(net, vocab, tokens, k=5):
    """The k most probable tokens for each '<mask>' in `tokens` (a list of
    token strings), as lists of strings.

    Defined in :numref:`sec_bert-pretraining`.
    """
    device = list(net.collect_params().values())[0].list_ctx()[0]
    tokens, segments = d2l.get_tokens_and_segments(tokens)
    positions = [i for i, token in enumerate(tokens) if token == '<mask>']
    _, mlm_Y_hat, _ = net(np.array([vocab[tokens]], ctx=device),
                          np.array([segments], ctx=device),
                          np.array([len(tokens)], ctx=device),
                          np.array([positions], ctx=device))
    top = onp.argsort(-mlm_Y_hat[0].asnumpy(), axis=1)[:, :k]
    return [vocab.to_tokens(row.tolist()) for row in top]


# chapters/bert-distributed.md, line 32 (:numref:`sec_bert-distributed`)
import hashlib
import io
import pathlib
import pickle
import tempfile


# chapters/bert-distributed.md, line 80
class ShardSampler(gluon.data.Sampler):
    """Yield this worker's share of every global minibatch of `batch_size`
    examples (what DistributedSampler and BatchSampler do in PyTorch).

    Defined in :numref:`sec_bert-distributed`.
    """
    def __init__(self, num_examples, batch_size, rank, num_workers, seed=0):
        if batch_size % num_workers:
            raise ValueError(f'batch_size={batch_size} must be a multiple of '
                             f'the number of workers ({num_workers})')
        self.num_examples, self.batch_size = num_examples, batch_size
        self.rank, self.num_workers = rank, num_workers
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        # The same order on every worker: same seed, same epoch
        order = onp.random.default_rng(self.seed + self.epoch).permutation(
            self.num_examples)
        for i in range(len(self)):
            batch = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield batch[self.rank::self.num_workers].tolist()

    def __len__(self):
        return self.num_examples // self.batch_size

def load_data_wiki_shard(batch_size, max_len, rank, num_workers, seed=0):
    """This worker's shards of WikiText-2: global minibatches of `batch_size`
    examples; return (iter, sampler, vocab).

    Defined in :numref:`sec_bert-distributed`.
    """
    with _gc_paused():
        train_set = _WikiTextDataset(_read_wiki(d2l.wikitext2_dir()), max_len,
                                     seed)
    sampler = ShardSampler(len(train_set), batch_size, rank, num_workers, seed)
    train_iter = gluon.data.DataLoader(train_set, batch_sampler=sampler)
    return train_iter, sampler, train_set.vocab


# chapters/bert-distributed.md, line 154
def _get_shard_loss_sums(net, loss, vocab_size, tokens_X, segments_X,
                         valid_lens_x, pred_positions_X, mlm_weights_X, mlm_Y,
                         nsp_y):
    """Sums of the MLM and NSP losses of one shard, and [sum of the MLM
    losses, sum of the NSP losses, no. of prediction positions, no. of
    sentence pairs] as one array (the numbers that the workers add up).

    Defined in :numref:`sec_bert-distributed`.
    """
    _, mlm_Y_hat, nsp_Y_hat = net(tokens_X, segments_X,
                                  valid_lens_x.reshape(-1), pred_positions_X)
    mlm_l = loss(mlm_Y_hat.reshape((-1, vocab_size)), mlm_Y.reshape(-1),
                 mlm_weights_X.reshape((-1, 1))).sum()
    nsp_l = loss(nsp_Y_hat, nsp_y).sum()
    stats = np.stack([mlm_l.detach(), nsp_l.detach(), mlm_weights_X.sum(),
                      np.array(nsp_y.shape[0], dtype=mlm_l.dtype)])
    return mlm_l, nsp_l, stats


# chapters/bert-distributed.md, line 197
_CHECKPOINT_MAGIC = b'D2LCKPT1'

def _write_checkpoint_bytes(path, payload):
    """Write `payload` to `path` atomically, after a header with its length
    and SHA-256: readers see the old file or the new one, never a part.

    Defined in :numref:`sec_bert-distributed`.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (_CHECKPOINT_MAGIC + len(payload).to_bytes(8, 'little')
              + hashlib.sha256(payload).digest())
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name,
                                     suffix='.tmp', delete=False) as f:
        try:
            f.write(header + payload)
            f.flush()
            os.fsync(f.fileno())  # On the disk before it takes the real name
        except BaseException:
            os.remove(f.name)
            raise
    os.replace(f.name, path)

def _read_checkpoint_bytes(path):
    """The payload of a checkpoint file, after checking its length and hash.

    Defined in :numref:`sec_bert-distributed`.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    data = path.read_bytes()
    if data[:len(_CHECKPOINT_MAGIC)] != _CHECKPOINT_MAGIC:
        raise ValueError(f'{path} is not a checkpoint of this book (it does '
                         f'not start with {_CHECKPOINT_MAGIC!r})')
    start = len(_CHECKPOINT_MAGIC)
    length = int.from_bytes(data[start:start + 8], 'little')
    digest, payload = data[start + 8:start + 40], data[start + 40:]
    if len(payload) != length:
        raise ValueError(f'checkpoint {path} is truncated: {len(payload)} of '
                         f'{length} bytes; it was not written completely, so '
                         f'use an earlier checkpoint or train again')
    if hashlib.sha256(payload).digest() != digest:
        raise ValueError(f'checkpoint {path} is corrupted: its SHA-256 does '
                         f'not match; use an earlier checkpoint or train again')
    return payload


# chapters/bert-distributed.md, line 250
def save_checkpoint(path, net, trainer, step, vocab, config, info=None):
    """Save the model, the trainer (Adam) state (unless `trainer` is None),
    the step, the vocabulary, the model's configuration and `info` (a dict
    of plain data, e.g. how the model was trained) to `path`, atomically.

    Defined in :numref:`sec_bert-distributed`.
    """
    with tempfile.TemporaryDirectory() as tmp:
        net.save_parameters(f'{tmp}/params')
        if trainer is not None:
            trainer.save_states(f'{tmp}/trainer')
        state = {'params': pathlib.Path(f'{tmp}/params').read_bytes(),
                 'trainer': (pathlib.Path(f'{tmp}/trainer').read_bytes()
                             if trainer is not None else None),
                 'step': step, 'vocab': vocab.idx_to_token, 'config': config,
                 'info': info or {}}
    _write_checkpoint_bytes(path, pickle.dumps(state))

class _CheckpointUnpickler(pickle.Unpickler):
    """Unpickle plain data and the `allowed` (module, name) classes only:
    any other class or function in the data is refused, not called.

    Defined in :numref:`sec_bert-distributed`.
    """
    def __init__(self, data, path, allowed=()):
        super().__init__(io.BytesIO(data))
        self.path, self.allowed = path, set(allowed)

    def find_class(self, module, name):
        if (module, name) not in self.allowed:
            raise ValueError(
                f'{self.path} refers to {module}.{name}, which no checkpoint '
                f'of this book holds; loading it could run any code, so it '
                f'was refused. Load only checkpoints from a source you trust')
        return super().find_class(module, name)

# What Trainer.save_states writes: arrays, the optimizer, its schedule
_TRAINER_CLASSES = [('mxnet.ndarray.ndarray', 'NDArray'),
                    ('mxnet.numpy', 'ndarray'), ('builtins', 'bytearray'),
                    ('mxnet.optimizer.optimizer', 'Adam'),
                    ('mxnet.optimizer.optimizer', 'SGD'),
                    ('mxnet.lr_scheduler', 'PolyScheduler')]

def load_checkpoint(path):
    """The dictionary that save_checkpoint wrote, checked and with the
    vocabulary rebuilt as a d2l.Vocab.

    Defined in :numref:`sec_bert-distributed`.
    """
    state = _CheckpointUnpickler(_read_checkpoint_bytes(path), path).load()
    if state.get('trainer') is not None:  # Checked before MXNet unpickles it
        _CheckpointUnpickler(state['trainer'], path, _TRAINER_CLASSES).load()
    vocab = d2l.Vocab(reserved_tokens=state['vocab'])
    if vocab.idx_to_token != state['vocab']:
        raise ValueError(f'the vocabulary in {path} cannot be rebuilt')
    return dict(state, vocab=vocab)

def restore_checkpoint(state, net, trainer=None):
    """Put the parameters (and the trainer state) of a loaded checkpoint
    into `net` (and `trainer`); return the step it was saved at.

    Defined in :numref:`sec_bert-distributed`.
    """
    with tempfile.TemporaryDirectory() as tmp:
        pathlib.Path(f'{tmp}/params').write_bytes(state['params'])
        net.load_parameters(f'{tmp}/params')
        if trainer is not None:
            if state['trainer'] is None:
                raise ValueError('this checkpoint holds no trainer state '
                                 '(saved with trainer=None): it can be '
                                 'used, but training cannot resume from it')
            pathlib.Path(f'{tmp}/trainer').write_bytes(state['trainer'])
            trainer.load_states(f'{tmp}/trainer')
    return state['step']


# chapters/bert-distributed.md, line 408
_STATS_KEY = 999999  # KVStore key for the summed losses and counts

def train_bert_distributed(train_iter, sampler, net, vocab, config, kv,
                           num_steps, checkpoint, lr=0.01, save_every=None,
                           optimizer='adam'):
    """Pretrain BERT on this worker's shards with the `dist_sync` KVStore
    `kv`, continuing from `checkpoint` if it exists; rank 0 plots and saves
    it. Return (mean MLM loss, mean NSP loss) of this worker's shards and of
    the global minibatches, and the pairs per second of this worker.

    Defined in :numref:`sec_bert-distributed`.
    """
    rank, num_workers = kv.rank, kv.num_workers
    vocab_size, loss = len(vocab), gluon.loss.SoftmaxCELoss()
    trainer = gluon.Trainer(net.collect_params(), optimizer,
                            {'learning_rate': lr}, kvstore=kv,
                            update_on_kvstore=False)
    step = 0
    if pathlib.Path(checkpoint).exists():
        step = restore_checkpoint(load_checkpoint(checkpoint), net, trainer)
    kv.init(_STATS_KEY, np.zeros(4))
    # Every worker has made the same parameters (same seed or checkpoint).
    # The trainer copies rank 0's to every worker when it first uses the
    # KVStore, and in MXNet 1.9 that copy sometimes gave zeros for a
    # parameter: make the copy now (after one forward pass that finishes the
    # deferred initialization), then put the parameters back
    _get_shard_loss_sums(net, loss, vocab_size, *next(iter(train_iter)))
    params = {name: p.data().copy()
              for name, p in net.collect_params().items()}
    trainer.allreduce_grads()
    npx.waitall()
    for name, p in net.collect_params().items():
        p.set_data(params[name])
    animator = d2l.Animator(xlabel='step', ylabel='loss', xlim=[1, num_steps],
                            legend=['mlm', 'nsp']) if rank == 0 else None
    # Sums of this worker's MLM and NSP losses and of the global minibatches'
    # MLM and NSP losses, no. of this worker's sentence pairs, count
    metric, timer = d2l.Accumulator(6), d2l.Timer()
    while step < num_steps:
        epoch, skip = divmod(step, len(train_iter))
        sampler.set_epoch(epoch)
        for i, batch in enumerate(train_iter):
            if i < skip:  # Already trained before the checkpoint
                continue
            timer.start()
            with autograd.record():
                mlm_l, nsp_l, stats = _get_shard_loss_sums(net, loss,
                                                           vocab_size, *batch)
                # The sums of all workers (push may overwrite what it sends
                # with the sum, so it sends a copy)
                total = stats.copy()
                kv.push(_STATS_KEY, total)
                kv.pull(_STATS_KEY, out=total)
                # KVStore adds up the gradients of all workers: the sum is
                # the gradient of the global minibatch's mean loss
                l = mlm_l / total[2] + nsp_l / total[3]
            l.backward()
            trainer.step(1)
            shard, whole = stats[:2] / stats[2:], total[:2] / total[2:]
            metric.add(*shard.tolist(), *whole.tolist(), batch[0].shape[0], 1)
            timer.stop()
            step += 1
            if rank == 0:
                animator.add(step, whole.tolist())
                if step == num_steps or (save_every and step % save_every == 0):
                    save_checkpoint(checkpoint, net, trainer, step, vocab,
                                    config)
            if step == num_steps:
                break
    if rank == 0:  # The loss curve beside the checkpoint
        animator.fig.savefig(pathlib.Path(checkpoint).with_suffix('.png'))
    count = max(metric[5], 1)
    shard_losses = (metric[0] / count, metric[1] / count)
    global_losses = (metric[2] / count, metric[3] / count)
    return shard_losses, global_losses, metric[4] / max(timer.sum(), 1e-9)


# chapters/bert-distributed.md, line 553
def bert_config(num_hiddens=128, ffn_num_hiddens=256, num_heads=2,
                num_layers=2, dropout=0.2):
    """Keyword arguments of d2l.BERTModel besides vocab_size.

    Defined in :numref:`sec_bert-distributed`.
    """
    return dict(num_hiddens=num_hiddens, ffn_num_hiddens=ffn_num_hiddens,
                num_heads=num_heads, num_layers=num_layers, dropout=dropout)


# chapters/bert-distributed.md, line 710
def checkpoint_parameters(path):
    """The parameters in a checkpoint, as a dict of NumPy arrays.

    Defined in :numref:`sec_bert-distributed`.
    """
    state = load_checkpoint(path)
    with tempfile.TemporaryDirectory() as tmp:
        pathlib.Path(f'{tmp}/params').write_bytes(state['params'])
        return {name: value.asnumpy()
                for name, value in npx.load(f'{tmp}/params').items()}


# chapters/bert-distributed.md, line 746
def load_pretrained_bert(path, device=None):
    """The BERT model and the vocabulary saved in a checkpoint.

    Defined in :numref:`sec_bert-distributed`.
    """
    state = load_checkpoint(path)
    net = d2l.BERTModel(len(state['vocab']), **state['config'])
    restore_checkpoint(state, net)
    if device is not None:
        net.collect_params().reset_ctx(device)
    return net, state['vocab']

def get_bert_encoding(net, vocab, tokens_a, tokens_b=None, device=None):
    """BERT's encoding of every token of tokens_a (and tokens_b).

    Defined in :numref:`sec_bert-distributed`.
    """
    device = device or d2l.try_gpu()
    tokens, segments = d2l.get_tokens_and_segments(tokens_a, tokens_b)
    token_ids = np.expand_dims(np.array(vocab[tokens], ctx=device), axis=0)
    segments = np.expand_dims(np.array(segments, ctx=device), axis=0)
    valid_len = np.expand_dims(np.array(len(tokens), ctx=device), axis=0)
    encoded_X, _, _ = net(token_ids, segments, valid_len)
    return encoded_X


from d2l_extras.checks import apply_checks  # noqa: E402
apply_checks(globals(), 'mxnet')
