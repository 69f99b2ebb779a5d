"""The BERT chapters' `#@save` code for torch, with d2l 1.0.3's utilities.

Generated from chapters/bert.md, chapters/bert-dataset.md, chapters/bert-pretraining.md, chapters/bert-distributed.md by `python -m booktools sync`: edit the chapters, not this file.
Use it as `from d2l_extras import torch as d2l`.
"""
from d2l_extras._torch_preamble import *  # noqa: F403 -- imports and runtime settings

d2l = sys.modules[__name__]  # noqa: F405 -- chapter code calls d2l.<name>


# chapters/bert.md, line 43
def try_all_gpus():
    """Return all available GPUs, or [cpu] if there is no GPU.

    Defined in :numref:`sec_bert`.
    """
    devices = [torch.device(f'cuda:{i}')
               for i in range(torch.cuda.device_count())]
    return devices if devices else [torch.device('cpu')]


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


# chapters/bert.md, line 205
class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention over the packed valid tokens of a batch.

    Defined in :numref:`sec_bert`.
    """
    def __init__(self, num_hiddens, num_heads, key_size=None, query_size=None,
                 value_size=None, bias=True):
        super().__init__()
        if num_hiddens % num_heads != 0:
            raise ValueError(
                f'num_hiddens={num_hiddens} must be divisible by num_heads='
                f'{num_heads}: each head gets num_hiddens / num_heads features')
        self.num_heads = num_heads
        self.W_q = nn.Linear(query_size or num_hiddens, num_hiddens, bias=bias)
        self.W_k = nn.Linear(key_size or num_hiddens, num_hiddens, bias=bias)
        self.W_v = nn.Linear(value_size or num_hiddens, num_hiddens, bias=bias)
        self.W_o = nn.Linear(num_hiddens, num_hiddens, bias=bias)

    def split_heads(self, X):
        # (batch_size, num_steps, num_hiddens) ->
        # (batch_size, num_heads, num_steps, num_hiddens / num_heads)
        X = X.reshape(X.shape[0], X.shape[1], self.num_heads, -1)
        return X.transpose(1, 2)

    def forward(self, X, pack_index, is_valid):
        # Shape of `X`: (no. of valid tokens, `num_hiddens`); shape of
        # `is_valid`: (batch_size, num_steps)
        queries, keys, values = [
            self.split_heads(unpack_tokens(W(X), pack_index, is_valid))
            for W in (self.W_q, self.W_k, self.W_v)]
        # Every query attends to the valid keys of its sequence only
        attn_mask = is_valid.reshape(is_valid.shape[0], 1, 1, -1)
        output = nn.functional.scaled_dot_product_attention(
            queries, keys, values, attn_mask=attn_mask)
        output = output.transpose(1, 2)  # (batch_size, num_steps, heads, d)
        output = output.reshape(output.shape[0], output.shape[1], -1)
        return self.W_o(pack_tokens(output, pack_index))


# chapters/bert.md, line 289
class PositionWiseFFN(nn.Module):
    """The positionwise feed-forward network.

    Defined in :numref:`sec_bert`.
    """
    def __init__(self, ffn_num_input, ffn_num_hiddens, ffn_num_outputs):
        super().__init__()
        self.dense1 = nn.Linear(ffn_num_input, ffn_num_hiddens)
        self.relu = nn.ReLU()
        self.dense2 = nn.Linear(ffn_num_hiddens, ffn_num_outputs)

    def forward(self, X):
        return self.dense2(self.relu(self.dense1(X)))

class AddNorm(nn.Module):
    """Residual connection followed by layer normalization.

    Defined in :numref:`sec_bert`.
    """
    def __init__(self, norm_shape, dropout):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.ln = nn.LayerNorm(norm_shape)

    def forward(self, X, Y):
        return self.ln(self.dropout(Y) + X)

class EncoderBlock(nn.Module):
    """A Transformer encoder block working on packed valid tokens.

    Defined in :numref:`sec_bert`.
    """
    def __init__(self, num_hiddens, norm_shape, ffn_num_input, ffn_num_hiddens,
                 num_heads, dropout, key_size=None, query_size=None,
                 value_size=None):
        super().__init__()
        self.attention = MultiHeadSelfAttention(
            num_hiddens, num_heads, key_size, query_size, value_size)
        self.addnorm1 = AddNorm(norm_shape, dropout)
        self.ffn = PositionWiseFFN(ffn_num_input, ffn_num_hiddens, num_hiddens)
        self.addnorm2 = AddNorm(norm_shape, dropout)

    def forward(self, X, pack_index, is_valid):
        Y = self.addnorm1(X, self.attention(X, pack_index, is_valid))
        return self.addnorm2(Y, self.ffn(Y))


# chapters/bert.md, line 350
def packing_indices(tokens, valid_lens):
    """Row numbers of the valid tokens when the batch is seen as one matrix
    of batch_size * num_steps rows (`pack_index`), and the mask of the valid
    positions (`is_valid`, of shape (batch_size, num_steps)).

    Defined in :numref:`sec_bert`.
    """
    steps = torch.arange(tokens.shape[1], device=tokens.device)
    is_valid = steps < valid_lens.reshape(-1, 1)
    pack_index = is_valid.reshape(-1).nonzero().reshape(-1)
    return pack_index, is_valid

def pack_tokens(X, pack_index):
    """(batch_size, num_steps, ...) -> (no. of valid tokens, ...).

    Defined in :numref:`sec_bert`.
    """
    return X.reshape(-1, *X.shape[2:]).index_select(0, pack_index)

def unpack_tokens(X, pack_index, is_valid):
    """(no. of valid tokens, num_features) -> (batch_size, num_steps,
    num_features), with zeros at the padding positions.

    Defined in :numref:`sec_bert`.
    """
    rows = X.new_zeros(is_valid.numel(), X.shape[-1])
    # Each row is written at most once, also in the backward pass
    rows = rows.index_copy(0, pack_index, X)
    return rows.reshape(*is_valid.shape, X.shape[-1])


# chapters/bert.md, line 469
def check_bert_inputs(tokens, segments, valid_lens, max_len):
    """Check the inputs of a BERT encoder; return `valid_lens` of shape
    (batch_size,) (all positions are valid if `valid_lens` is None).

    Defined in :numref:`sec_bert`.
    """
    if tokens.dim() != 2:
        raise ValueError(
            f'tokens must have shape (batch_size, num_steps), got shape '
            f'{tuple(tokens.shape)}; add a batch axis with tokens.unsqueeze(0)')
    batch_size, num_steps = tokens.shape
    if segments.shape != tokens.shape:
        raise ValueError(f'segments must have the shape of tokens '
                         f'{tuple(tokens.shape)}, got {tuple(segments.shape)}')
    if num_steps > max_len:
        raise ValueError(
            f'the token sequences have {num_steps} positions, but this BERT '
            f'encoder has positional embeddings for max_len={max_len} '
            f'positions only; truncate the sequences to at most {max_len} '
            f'tokens, or build the model with max_len >= {num_steps}')
    if valid_lens is None:
        return torch.full((batch_size,), num_steps, device=tokens.device)
    if valid_lens.numel() != batch_size:
        raise ValueError(f'valid_lens must hold one length per sequence, i.e. '
                         f'have shape ({batch_size},), got '
                         f'{tuple(valid_lens.shape)}')
    valid_lens = valid_lens.reshape(-1).to(tokens.device)
    lowest, highest = valid_lens.min().item(), valid_lens.max().item()
    if lowest < 1 or highest > num_steps:
        raise ValueError(
            f'valid_lens counts the non-padding tokens of each sequence, so it '
            f'must lie in [1, num_steps={num_steps}]; got values from '
            f'{lowest:g} to {highest:g}')
    return valid_lens

def check_sizes_match(num_hiddens, **sizes):
    """Every layer of BERT reads `num_hiddens`-dimensional hidden states.

    Defined in :numref:`sec_bert`.
    """
    for name, size in sizes.items():
        if name == 'norm_shape':
            size = [size] if isinstance(size, int) else list(size)
            expected = [num_hiddens]
        else:
            expected = num_hiddens
        if size != expected:
            raise ValueError(
                f'{name}={size} does not fit num_hiddens={num_hiddens}: every '
                f'layer of BERT reads the {num_hiddens}-dimensional hidden '
                f'states, so pass {name}={expected}')

class BERTEncoder(nn.Module):
    """BERT encoder.

    Defined in :numref:`sec_bert`.
    """
    def __init__(self, vocab_size, num_hiddens, norm_shape, ffn_num_input,
                 ffn_num_hiddens, num_heads, num_layers, dropout,
                 max_len=1000, key_size=768, query_size=768, value_size=768):
        super().__init__()
        check_sizes_match(num_hiddens, norm_shape=norm_shape,
                          ffn_num_input=ffn_num_input, key_size=key_size,
                          query_size=query_size, value_size=value_size)
        self.max_len = max_len
        self.token_embedding = nn.Embedding(vocab_size, num_hiddens)
        self.segment_embedding = nn.Embedding(2, num_hiddens)
        self.blks = nn.ModuleList([EncoderBlock(
            num_hiddens, norm_shape, ffn_num_input, ffn_num_hiddens,
            num_heads, dropout, key_size, query_size, value_size)
            for _ in range(num_layers)])
        # In BERT, positional embeddings are learnable, thus we create a
        # parameter of positional embeddings that are long enough
        self.pos_embedding = nn.Parameter(torch.randn(1, max_len, num_hiddens))

    def forward(self, tokens, segments, valid_lens=None):
        valid_lens = check_bert_inputs(tokens, segments, valid_lens,
                                       self.max_len)
        pack_index, is_valid = packing_indices(tokens, valid_lens)
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        # Embed the valid tokens only: each of shape (no. of valid tokens,)
        tokens, segments, positions = [
            pack_tokens(ids, pack_index)
            for ids in (tokens, segments, positions.expand_as(tokens))]
        X = (self.token_embedding(tokens) + self.segment_embedding(segments)
             + self.pos_embedding[0, positions])
        for blk in self.blks:
            X = blk(X, pack_index, is_valid)
        return unpack_tokens(X, pack_index, is_valid)


# chapters/bert.md, line 668
class MaskLM(nn.Module):
    """The masked language model task of BERT.

    Defined in :numref:`sec_bert`.
    """
    def __init__(self, vocab_size, num_hiddens, num_inputs=768):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(num_inputs, num_hiddens),
                                 nn.ReLU(),
                                 nn.LayerNorm(num_hiddens),
                                 nn.Linear(num_hiddens, vocab_size))

    def forward(self, X, pred_positions):
        if pred_positions.dim() != 2 or pred_positions.shape[0] != X.shape[0]:
            raise ValueError(
                f'pred_positions must have shape (batch_size={X.shape[0]}, '
                f'no. of predictions), got {tuple(pred_positions.shape)}')
        if pred_positions.numel() and not (
                0 <= pred_positions.min().item()
                and pred_positions.max().item() < X.shape[1]):
            raise ValueError(f'pred_positions must lie in [0, num_steps='
                             f'{X.shape[1]}); got values outside')
        # Pick the rows X[i, pred_positions[i, j]] of all examples at once;
        # the index of shape (batch_size, no. of predictions, 1) is broadcast
        # along the last axis of `X`
        masked_X = torch.take_along_dim(
            X, pred_positions.long().unsqueeze(-1), dim=1)
        return self.mlp(masked_X)


# chapters/bert.md, line 757
class NextSentencePred(nn.Module):
    """The next sentence prediction task of BERT.

    Defined in :numref:`sec_bert`.
    """
    def __init__(self, num_inputs):
        super().__init__()
        self.output = nn.Linear(num_inputs, 2)

    def forward(self, X):
        # `X` shape: (batch size, `num_hiddens`)
        return self.output(X)


# chapters/bert.md, line 839
class BERTModel(nn.Module):
    """The BERT model.

    Defined in :numref:`sec_bert`.
    """
    def __init__(self, vocab_size, num_hiddens, norm_shape, ffn_num_input,
                 ffn_num_hiddens, num_heads, num_layers, dropout,
                 max_len=1000, key_size=768, query_size=768, value_size=768,
                 hid_in_features=768, mlm_in_features=768,
                 nsp_in_features=768):
        super().__init__()
        check_sizes_match(num_hiddens, hid_in_features=hid_in_features,
                          mlm_in_features=mlm_in_features,
                          nsp_in_features=nsp_in_features)
        self.encoder = BERTEncoder(
            vocab_size, num_hiddens, norm_shape, ffn_num_input,
            ffn_num_hiddens, num_heads, num_layers, dropout, max_len=max_len,
            key_size=key_size, query_size=query_size, value_size=value_size)
        self.hidden = nn.Sequential(nn.Linear(hid_in_features, num_hiddens),
                                    nn.Tanh())
        self.mlm = MaskLM(vocab_size, num_hiddens, mlm_in_features)
        self.nsp = NextSentencePred(nsp_in_features)

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


# chapters/bert-dataset.md, line 334
class _WikiTextDataset(torch.utils.data.Dataset):
    """Pretraining examples for masked language modeling and NSP.

    Defined in :numref:`sec_bert-dataset`.
    """
    def __init__(self, paragraphs, max_len, seed=None, vocab=None):
        self.vocab, arrays = _make_pretraining_arrays(paragraphs, max_len,
                                                      seed, vocab)
        # One conversion per array, sharing memory with NumPy
        self.tensors = [torch.from_numpy(a) for a in arrays]

    def __getitem__(self, idx):
        if isinstance(idx, int):  # One example
            return tuple(tensor[idx] for tensor in self.tensors)
        # A list of indices (a whole minibatch): gather the rows at once
        idx = torch.as_tensor(idx)
        return tuple(tensor.index_select(0, idx) for tensor in self.tensors)

    def __len__(self):
        return len(self.tensors[0])


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


# chapters/bert-dataset.md, line 400
def load_data_wiki(batch_size, max_len, seed=None):
    """Load WikiText-2 as BERT pretraining examples; return (iter, vocab).

    Defined in :numref:`sec_bert-dataset`.
    """
    data_dir = d2l.wikitext2_dir()
    # Many small lists but no reference cycles: see _gc_paused
    with _gc_paused():
        train_set = _WikiTextDataset(_read_wiki(data_dir), max_len, seed)
    # The sampler yields the shuffled indices of a whole minibatch at once
    sampler = torch.utils.data.BatchSampler(
        torch.utils.data.RandomSampler(train_set), batch_size,
        drop_last=False)
    # batch_size=None: each list of indices goes to train_set[...] as is
    train_iter = torch.utils.data.DataLoader(train_set, sampler=sampler,
                                             batch_size=None, num_workers=0)
    return train_iter, train_set.vocab


# chapters/bert-pretraining.md, line 98
def _get_batch_loss_bert(net, loss, vocab_size, tokens_X,
                         segments_X, valid_lens_x,
                         pred_positions_X, mlm_weights_X,
                         mlm_Y, nsp_y):
    """Defined in :numref:`sec_bert-pretraining`."""
    # Forward pass
    _, mlm_Y_hat, nsp_Y_hat = net(tokens_X, segments_X,
                                  valid_lens_x.reshape(-1),
                                  pred_positions_X)
    # Compute masked language model loss: one loss per prediction position
    # (`loss` has reduction='none'), weighted so that padded positions count 0
    mlm_l = loss(mlm_Y_hat.reshape(-1, vocab_size), mlm_Y.reshape(-1)) *\
    mlm_weights_X.reshape(-1)
    mlm_l = mlm_l.sum() / (mlm_weights_X.sum() + 1e-8)
    # Compute next sentence prediction loss
    nsp_l = loss(nsp_Y_hat, nsp_y).mean()
    l = mlm_l + nsp_l
    return mlm_l, nsp_l, l


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


# chapters/bert-pretraining.md, line 275
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
    return torch.utils.data.DataLoader(dataset, sampler=batches,
                                       batch_size=None)


# chapters/bert-pretraining.md, line 334
def evaluate_bert(net, data_iter, vocab_size):
    """MLM loss and accuracy (mean over the prediction positions) and NSP
    loss and accuracy (mean over the sentence pairs), in inference mode.

    Defined in :numref:`sec_bert-pretraining`.
    """
    loss = nn.CrossEntropyLoss(reduction='none')
    device = next(net.parameters()).device
    # Sums of the MLM loss, correct MLM predictions, no. of predictions,
    # NSP loss, correct NSP predictions, no. of sentence pairs
    metric = d2l.Accumulator(6)
    net.eval()  # No dropout
    with torch.no_grad():
        for batch in data_iter:
            (tokens, segments, valid_lens, pred_positions, mlm_weights, mlm_Y,
             nsp_y) = [x.to(device) for x in batch]
            _, mlm_Y_hat, nsp_Y_hat = net(tokens, segments, valid_lens,
                                          pred_positions)
            mlm_Y_hat = mlm_Y_hat.reshape(-1, vocab_size)
            mlm_Y, weights = mlm_Y.reshape(-1), mlm_weights.reshape(-1)
            mlm_correct = mlm_Y_hat.argmax(dim=1) == mlm_Y
            nsp_correct = nsp_Y_hat.argmax(dim=1) == nsp_y
            metric.add(float((loss(mlm_Y_hat, mlm_Y) * weights).sum()),
                       float((mlm_correct * weights).sum()),
                       float(weights.sum()),
                       float(loss(nsp_Y_hat, nsp_y).sum()),
                       float(nsp_correct.sum()), len(nsp_y))
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


# chapters/bert-pretraining.md, line 420
def token_encodings(net, batch, vocab, context_free=False):
    """BERT encodings of the ordinary tokens of a minibatch (masks undone)
    as a NumPy array (no. of tokens, num_hiddens), and their token IDs.

    Defined in :numref:`sec_bert-pretraining`.
    """
    tokens, segments, valid_lens, pred_positions, mlm_weights, mlm_Y, _ = [
        d2l.numpy(x) for x in batch]
    tokens = _original_tokens(tokens, pred_positions, mlm_weights, mlm_Y)
    device = next(net.parameters()).device
    X = torch.tensor(tokens, device=device)
    net.eval()  # No dropout
    with torch.no_grad():
        if context_free:  # The token embedding: one vector per token
            encoded = net.encoder.token_embedding(X)
        else:
            encoded, _, _ = net(X, torch.tensor(segments, device=device),
                                torch.tensor(valid_lens, device=device))
    is_word = ((onp.arange(tokens.shape[1]) < valid_lens[:, None])
               & ~onp.isin(tokens, vocab[['<pad>', '<mask>', '<cls>',
                                          '<sep>', '<unk>']]))
    return d2l.numpy(encoded.cpu())[is_word], tokens[is_word]


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


# chapters/bert-pretraining.md, line 753
def pretrain_bert(net, paragraphs, vocab, num_steps, lr=1e-3,
                  batch_size=128, max_len=64, warmup_fraction=0.1, seed=0,
                  stop_at=None, on_step=None):
    """Pretrain with Adam; the learning rate grows linearly to `lr` over the
    first `warmup_fraction` of the steps, then falls linearly to 0. Every
    epoch draws new sentence pairs and masks. `on_step(step, mlm_l, nsp_l)`
    is called after every step; training stops early at step `stop_at`.

    Defined in :numref:`sec_bert-pretraining`.
    """
    loss = nn.CrossEntropyLoss(reduction='none')
    device = next(net.parameters()).device
    warmup = max(1, round(num_steps * warmup_fraction))
    trainer = torch.optim.Adam(net.parameters(), lr=lr)
    # The factor of lr in step `done` (counted from 1), as in MXNet's
    # PolyScheduler with pwr=1
    schedule = torch.optim.lr_scheduler.LambdaLR(trainer, lambda i: min(
        (i + 1) / warmup, (num_steps - i - 1) / max(num_steps - warmup, 1)))
    step, epoch = 0, 0
    while step < (stop_at or num_steps):
        # New pairs and masks every epoch (dynamic masking)
        for batch in make_wiki_iter(paragraphs, batch_size, max_len, vocab,
                                    seed + epoch):
            net.train()
            batch = [x.to(device) for x in batch]
            trainer.zero_grad()
            mlm_l, nsp_l, l = _get_batch_loss_bert(net, loss, len(vocab),
                                                   *batch)
            l.backward()
            trainer.step()
            schedule.step()
            step += 1
            if on_step:
                on_step(step, mlm_l.item(), nsp_l.item())
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


# chapters/bert-pretraining.md, line 899
def fill_mask(net, vocab, tokens, k=5):
    """The k most probable tokens for each '<mask>' in `tokens` (a list of
    token strings), as lists of strings.

    Defined in :numref:`sec_bert-pretraining`.
    """
    device = next(net.parameters()).device
    tokens, segments = d2l.get_tokens_and_segments(tokens)
    positions = [i for i, token in enumerate(tokens) if token == '<mask>']
    net.eval()  # No dropout
    with torch.no_grad():
        _, mlm_Y_hat, _ = net(torch.tensor([vocab[tokens]], device=device),
                              torch.tensor([segments], device=device),
                              torch.tensor([len(tokens)], device=device),
                              torch.tensor([positions], device=device))
    top = mlm_Y_hat[0].topk(k, dim=1).indices
    return [vocab.to_tokens(row) for row in top.tolist()]


# chapters/bert-distributed.md, line 32 (:numref:`sec_bert-distributed`)
import hashlib
import io
import pathlib
import pickle
import tempfile


# chapters/bert-distributed.md, line 42 (:numref:`sec_bert-distributed`)
import torch.distributed as dist


# chapters/bert-distributed.md, line 119
def load_data_wiki_shard(batch_size, max_len, rank, num_workers, seed=0):
    """This worker's shards of WikiText-2: global minibatches of `batch_size`
    examples; return (iter, sampler, vocab).

    Defined in :numref:`sec_bert-distributed`.
    """
    if batch_size % num_workers:
        raise ValueError(f'batch_size={batch_size} must be a multiple of '
                         f'the number of workers ({num_workers})')
    with _gc_paused():
        train_set = _WikiTextDataset(_read_wiki(d2l.wikitext2_dir()), max_len,
                                     seed)
    sampler = torch.utils.data.distributed.DistributedSampler(
        train_set, num_replicas=num_workers, rank=rank, shuffle=True,
        seed=seed, drop_last=True)
    batch_sampler = torch.utils.data.BatchSampler(
        sampler, batch_size // num_workers, drop_last=True)
    # Its own generator: making an iterator would otherwise draw a number from
    # the global one, which also draws the dropout masks (see resuming)
    train_iter = torch.utils.data.DataLoader(
        train_set, sampler=batch_sampler, batch_size=None, num_workers=0,
        generator=torch.Generator())
    return train_iter, sampler, train_set.vocab


# chapters/bert-distributed.md, line 172
def _get_shard_loss_sums(net, loss, vocab_size, tokens_X, segments_X,
                         valid_lens_x, pred_positions_X, mlm_weights_X, mlm_Y,
                         nsp_y):
    """Sums of the MLM and NSP losses of one shard, and [sum of the MLM
    losses, sum of the NSP losses, no. of prediction positions, no. of
    sentence pairs] as one tensor (the numbers that the workers add up).

    Defined in :numref:`sec_bert-distributed`.
    """
    _, mlm_Y_hat, nsp_Y_hat = net(tokens_X, segments_X,
                                  valid_lens_x.reshape(-1), pred_positions_X)
    mlm_l = (loss(mlm_Y_hat.reshape(-1, vocab_size), mlm_Y.reshape(-1))
             * mlm_weights_X.reshape(-1)).sum()
    nsp_l = loss(nsp_Y_hat, nsp_y).sum()
    stats = torch.stack([mlm_l.detach(), nsp_l.detach(), mlm_weights_X.sum(),
                         torch.tensor(float(len(nsp_y)), device=nsp_y.device)])
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


# chapters/bert-distributed.md, line 319
def save_checkpoint(path, net, trainer, step, vocab, config, info=None):
    """Save the model, the optimizer (Adam) state (unless `trainer` is None),
    the step, the random number generator, the vocabulary, the model's
    configuration and `info` (a dict of plain data, e.g. how the model was
    trained) to `path`, atomically.

    Defined in :numref:`sec_bert-distributed`.
    """
    state = {'model': net.state_dict(),
             'optimizer': trainer.state_dict() if trainer else None,
             'step': step, 'rng': torch.get_rng_state(),
             'vocab': vocab.idx_to_token, 'config': config,
             'info': info or {}}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    _write_checkpoint_bytes(path, buffer.getvalue())

def load_checkpoint(path):
    """The dictionary that save_checkpoint wrote, checked and with the
    vocabulary rebuilt as a d2l.Vocab.

    Defined in :numref:`sec_bert-distributed`.
    """
    try:  # weights_only=True: tensors and plain data only, never code
        state = torch.load(io.BytesIO(_read_checkpoint_bytes(path)),
                           map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f'{path} holds more than tensors and plain data; loading it '
            f'could run any code, so it was refused. Load only checkpoints '
            f'from a source you trust') from error
    vocab = d2l.Vocab(reserved_tokens=state['vocab'])
    if vocab.idx_to_token != state['vocab']:
        raise ValueError(f'the vocabulary in {path} cannot be rebuilt')
    return dict(state, vocab=vocab)

def restore_checkpoint(state, net, trainer=None):
    """Put the parameters (and the optimizer state and the random number
    generator) of a loaded checkpoint into `net` (and `trainer`); return the
    step it was saved at.

    Defined in :numref:`sec_bert-distributed`.
    """
    net.load_state_dict(state['model'])
    if trainer is not None:
        if state['optimizer'] is None:
            raise ValueError('this checkpoint holds no optimizer state '
                             '(saved with trainer=None): it can be used, '
                             'but training cannot resume from it')
        trainer.load_state_dict(state['optimizer'])
        torch.set_rng_state(state['rng'])
    return state['step']


# chapters/bert-distributed.md, line 484
def train_bert_distributed(train_iter, sampler, net, vocab, config, device,
                           num_steps, checkpoint, lr=0.01, save_every=None,
                           optimizer='adam'):
    """Pretrain BERT on this worker's shards with DistributedDataParallel,
    continuing from `checkpoint` if it exists; rank 0 plots and saves it.
    Return (mean MLM loss, mean NSP loss) of this worker's shards and of the
    global minibatches, and the pairs per second of this worker.

    Defined in :numref:`sec_bert-distributed`.
    """
    rank, num_workers = dist.get_rank(), dist.get_world_size()
    vocab_size, loss = len(vocab), nn.CrossEntropyLoss(reduction='none')
    net = net.to(device)
    optimizer_class = {'adam': torch.optim.Adam, 'sgd': torch.optim.SGD}
    trainer = optimizer_class[optimizer](net.parameters(), lr=lr)
    state = [None]
    if rank == 0 and pathlib.Path(checkpoint).exists():
        state = [load_checkpoint(checkpoint)]
    dist.broadcast_object_list(state, src=0)  # The checkpoint, to every rank
    step = 0 if state[0] is None else restore_checkpoint(state[0], net,
                                                         trainer)
    # DDP copies rank 0's parameters to all workers, then averages the
    # gradients of the workers during backward
    ddp_net = nn.parallel.DistributedDataParallel(
        net, device_ids=[device] if device.type == 'cuda' else None)
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
            batch = [elem.to(device) for elem in batch]
            trainer.zero_grad()
            mlm_l, nsp_l, stats = _get_shard_loss_sums(ddp_net, loss,
                                                       vocab_size, *batch)
            total = stats.clone()
            dist.all_reduce(total)  # The sums of all workers
            # DDP averages the gradients: times num_workers, the average is
            # the gradient of the global minibatch's mean loss
            l = (mlm_l / total[2] + nsp_l / total[3]) * num_workers
            l.backward()
            trainer.step()
            shard, whole = stats[:2] / stats[2:], total[:2] / total[2:]
            metric.add(*shard.tolist(), *whole.tolist(), len(batch[0]), 1)
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


# chapters/bert-distributed.md, line 562
def bert_config(num_hiddens=128, ffn_num_hiddens=256, num_heads=2,
                num_layers=2, dropout=0.2):
    """Keyword arguments of d2l.BERTModel besides vocab_size.

    Defined in :numref:`sec_bert-distributed`.
    """
    return dict(num_hiddens=num_hiddens, norm_shape=[num_hiddens],
                ffn_num_input=num_hiddens, ffn_num_hiddens=ffn_num_hiddens,
                num_heads=num_heads, num_layers=num_layers, dropout=dropout,
                key_size=num_hiddens, query_size=num_hiddens,
                value_size=num_hiddens, hid_in_features=num_hiddens,
                mlm_in_features=num_hiddens, nsp_in_features=num_hiddens)


# chapters/bert-distributed.md, line 586
def init_distributed():
    """Join the process group that torchrun describes in the environment;
    return (rank, number of workers, device).

    Defined in :numref:`sec_bert-distributed`.
    """
    if torch.cuda.is_available():
        device = torch.device('cuda', int(os.environ.get('LOCAL_RANK', 0)))
        torch.cuda.set_device(device)
        dist.init_process_group('nccl')
    else:
        device = torch.device('cpu')
        dist.init_process_group('gloo')
    return dist.get_rank(), dist.get_world_size(), device


# chapters/bert-distributed.md, line 721
def checkpoint_parameters(path):
    """The parameters in a checkpoint, as a dict of NumPy arrays.

    Defined in :numref:`sec_bert-distributed`.
    """
    return {name: value.numpy()
            for name, value in load_checkpoint(path)['model'].items()}


# chapters/bert-distributed.md, line 769
def load_pretrained_bert(path, device=None):
    """The BERT model and the vocabulary saved in a checkpoint.

    Defined in :numref:`sec_bert-distributed`.
    """
    state = load_checkpoint(path)
    net = d2l.BERTModel(len(state['vocab']), **state['config'])
    restore_checkpoint(state, net)
    return net.to(device or d2l.try_gpu()), state['vocab']

def get_bert_encoding(net, vocab, tokens_a, tokens_b=None):
    """BERT's encoding of every token of tokens_a (and tokens_b).

    Defined in :numref:`sec_bert-distributed`.
    """
    device = next(net.parameters()).device
    tokens, segments = d2l.get_tokens_and_segments(tokens_a, tokens_b)
    token_ids = torch.tensor(vocab[tokens], device=device).unsqueeze(0)
    segments = torch.tensor(segments, device=device).unsqueeze(0)
    valid_len = torch.tensor(len(tokens), device=device).unsqueeze(0)
    net.eval()  # No dropout: the same text always gets the same encoding
    with torch.no_grad():
        encoded_X, _, _ = net(token_ids, segments, valid_len)
    return encoded_X


from d2l_extras.checks import apply_checks  # noqa: E402
apply_checks(globals(), 'torch')
