"""Argument checks for the public functions and classes of d2l_extras.

The chapter code stays as short as the reader sees it in the book; the checks
live here. The generated modules end with ``apply_checks(globals(), ...)``,
which wraps every name of CONTRACTS[framework] so that a bad argument raises
one TypeError or ValueError that names the argument and what is expected,
before any work is done. A contract lists a validator per argument, and
optionally checks of the whole call (`before`), of its result (`after`), and
a translation of an error the chapter code raises unexplained (`around`).

To check a new function, add one line to the table of its framework.
"""

import functools
import inspect
import math
import numbers
import pathlib

from d2l_extras.wikitext2 import not_utf8_message

RESERVED_TOKENS = ['<pad>', '<mask>', '<cls>', '<sep>']
# Bytes per padded position while the pretraining arrays are built (int64
# ids, segments, masked ids; float64 random keys and their sorted copy; ...).
_DATA_BYTES_PER_POSITION = 64


class Contract:
    def __init__(self, before=None, after=None, around=None, **arguments):
        self.arguments = arguments  # parameter name -> validator(name, value)
        self.before = before  # before(arguments, namespace)
        self.after = after  # after(result, arguments, namespace)
        self.around = around  # around(call, arguments, namespace)


# ------------------------------------------------------------- validators
# Each takes (name, value) and raises TypeError or ValueError.


def _is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def int_at_least(low, example):
    def check(name, value):
        if not _is_integer(value):
            raise TypeError(
                f'{name} は整数です ({name} must be an integer '
                f'such as {example}, got {_show(value)})'
            )
        if value < low:
            raise ValueError(
                f'{name} は {low} 以上の整数です ({name} must be '
                f'an integer >= {low} such as {example}, got '
                f'{value})'
            )

    return check


positive_int = int_at_least(1, 128)


def optional(check):
    def check_unless_none(name, value):
        if value is not None:
            check(name, value)

    return check_unless_none


def real_in(low, high, *, high_included, example):
    def check(name, value):
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise TypeError(
                f'{name} は数です ({name} must be a number such as {example}, got {_show(value)})'
            )
        bracket = ']' if high_included else ')'
        inside = low <= value <= high if high_included else low <= value < high
        if not inside:  # also NaN
            raise ValueError(
                f'{name} は [{low}, {high}{bracket} の数です '
                f'({name} must lie in [{low}, {high}{bracket}, '
                f'e.g. {example}; got {value})'
            )

    return check


dropout_rate = real_in(0, 1, high_included=False, example=0.2)
byte_count = real_in(0, math.inf, high_included=False, example=1536)


def path_like(name, value):
    if not isinstance(value, (str, pathlib.PurePath)):
        raise TypeError(
            f'{name} はパスです ({name} must be a path (str or pathlib.Path), got {_show(value)})'
        )


def norm_shape(name, value):
    values = [value] if _is_integer(value) else value
    if not (
        isinstance(values, (list, tuple))
        and values
        and all(_is_integer(v) and v > 0 for v in values)
    ):
        raise TypeError(
            f'{name} は正の整数か、そのリストです ({name} must be '
            f'a positive integer or a list of them such as [128], '
            f'got {_show(value)})'
        )


def device_name(name, value):
    """An unknown kind of device is the chapter's own message; a malformed
    index ('cuda:x') would otherwise end in int()'s."""
    if isinstance(value, str):
        _, _, index = value.strip().lower().replace('(', ':').rstrip(')').partition(':')
        if index and not index.isdigit():
            raise ValueError(
                f'{name} の番号が整数ではありません ({name}='
                f'{value!r}: the device index must be a whole '
                "number, as in 'cuda:0' or 'gpu(0)')"
            )


def _show(value):
    text = repr(value)
    text = text if len(text) <= 40 else text[:37] + '...'
    return f'{type(value).__name__} {text}'


# ------------------------------------------------------ whole-call checks


def rank_of_workers(arguments, namespace):
    rank, num_workers = arguments.get('rank'), arguments.get('num_workers')
    if rank is not None and num_workers is not None and rank >= num_workers:
        raise ValueError(
            f'rank は 0 から num_workers - 1 までです (rank={rank} must be below '
            f'num_workers={num_workers}: the workers are numbered 0 to {num_workers - 1})'
        )
    batch_size = arguments.get('batch_size')
    if batch_size is not None and num_workers is not None and batch_size % num_workers:
        raise ValueError(
            f'batch_size は num_workers の倍数です (batch_size={batch_size} must be a '
            f'multiple of num_workers={num_workers}: every worker gets an equal share)'
        )


def heads_divide_hiddens(arguments, namespace):
    num_hiddens, num_heads = arguments.get('num_hiddens'), arguments.get('num_heads')
    if num_hiddens is not None and num_heads is not None and num_hiddens % num_heads:
        raise ValueError(
            f'num_hiddens は num_heads で割り切れる数です (num_hiddens={num_hiddens} must '
            f'be a multiple of num_heads={num_heads}: each head gets an equal share)'
        )


def token_list(name, value):
    """A string would be split into characters, silently."""
    if value is None and name == 'tokens_b':
        return
    if not (isinstance(value, (list, tuple)) and value and all(isinstance(t, str) for t in value)):
        raise TypeError(
            f'{name} はトークン（文字列）のリストです ({name} must be a non-empty list of '
            f"token strings such as ['a', 'crane', 'is', 'flying'], got {_show(value)})"
        )


def _array_type(framework):
    if framework == 'torch':
        import torch

        return torch.Tensor, 'torch.Tensor', 'torch.tensor'
    import mxnet

    return mxnet.ndarray.NDArray, 'mxnet.np.ndarray', 'np.array'


def arrays(*names):
    """The named arguments, where given, are arrays of the framework."""

    def check(arguments, namespace):
        array_type, type_name, make = _array_type(namespace['_checks_framework'])
        for name in names:
            value = arguments.get(name)
            if value is not None and not isinstance(value, array_type):
                raise TypeError(
                    f'{name} は配列です ({name} must be a '
                    f'{type_name}, e.g. {make}([[3, 25, 7]]), got '
                    f'{_show(value)})'
                )

    return check


def all_of(*checks):
    def check(*args):
        for each in checks:
            each(*args)

    return check


def ids_in_range(arguments, namespace):
    """Token ids below the vocabulary size, segment ids below the number of
    segments, whole numbers: embeddings would clip or truncate silently."""
    encoder = arguments['self']
    framework = namespace['_checks_framework']
    for name, table in (
        ('tokens', encoder.token_embedding),
        ('segments', encoder.segment_embedding),
    ):
        ids = arguments[name]
        size = table.weight.shape[0]
        if framework == 'torch':
            if ids.is_floating_point() or ids.is_complex():
                raise TypeError(
                    f'{name} は整数の ID です ({name} must hold '
                    f'integer ids, dtype torch.long, got '
                    f'{ids.dtype})'
                )
            if ids.numel() == 0:
                continue
            import torch

            # one device sync for both bounds
            lowest, highest = torch.stack([ids.min(), ids.max()]).tolist()
            fractional = False
        else:
            if ids.size == 0:
                continue
            lowest, highest = float(ids.min()), float(ids.max())
            fractional = ids.dtype.kind == 'f' and bool((ids != namespace['np'].floor(ids)).any())
        if fractional or not (0 <= lowest and highest < size):
            what = 'ID' if name == 'tokens' else '値'
            raise ValueError(
                f'{name} の {what} は 0 から {size - 1} の整数です ({name} '
                f'must hold whole numbers in [0, {size}): the embedding has '
                f'{size} rows; got values from {lowest:g} to {highest:g}'
                + ('; some are not whole numbers' if fractional else '')
                + ')'
            )


def valid_lens_not_nan(arguments, namespace):
    valid_lens = arguments.get('valid_lens')
    if valid_lens is None:
        return
    if namespace['_checks_framework'] == 'torch':
        if not valid_lens.is_floating_point():
            return
        has_nan = bool(valid_lens.isnan().any())
    else:
        if valid_lens.dtype.kind != 'f':
            return
        has_nan = bool(namespace['np'].isnan(valid_lens).any())
    if has_nan:
        raise ValueError(
            'valid_lens に NaN があります (valid_lens holds NaN; '
            'it must count the non-padding tokens of each '
            'sequence, numbers in [1, num_steps])'
        )


def mlm_preds_fit(arguments, namespace):
    preds, max_len = arguments.get('num_mlm_preds'), arguments.get('max_len')
    if preds is not None and max_len is not None and preds > max_len:
        raise ValueError(
            f'num_mlm_preds は max_len 以下です (num_mlm_preds='
            f'{preds} must be <= max_len={max_len}: at most every '
            'position is predicted)'
        )


def parameters_fit(arguments, namespace):
    """Refuse a model whose parameters alone cannot fit into memory, before
    they are allocated (the kernel would be killed)."""
    config = {
        name: arguments.get(name, default)
        for name, default in (
            ('vocab_size', None),
            ('num_hiddens', None),
            ('ffn_num_hiddens', None),
            ('num_heads', None),
            ('num_layers', None),
            ('max_len', 1000),
        )
    }
    estimate = namespace['estimate_bert_memory'](batch_size=1, **config)
    needed = estimate['parameters']
    available = namespace['available_memory']()
    if needed > available:
        size = namespace['format_bytes']
        raise MemoryError(
            f'パラメータだけで約 {size(needed)} 必要ですが、空きは {size(available)} '
            f'です (the parameters alone need about {size(needed)}, but only '
            f'{size(available)} is free; the positional embeddings grow with '
            f'max_len={config["max_len"]} and the embeddings with vocab_size='
            f'{config["vocab_size"]}: reduce max_len, vocab_size or '
            'num_hiddens)'
        )


# ---------------------------------------------------- the data pipeline


def read_wiki_explained(call, arguments, namespace):
    file_name = pathlib.Path(arguments['data_dir']) / 'wiki.train.tokens'
    try:
        paragraphs = call()
    except UnicodeDecodeError:
        raise ValueError(not_utf8_message(file_name)) from None
    if not paragraphs:
        raise ValueError(
            f'{file_name} から事前学習用のサンプルを作れません: 2 文以上の段落がありません '
            f'(no example: no paragraph (line) of {file_name.name} has two or '
            "more sentences separated by ' . ' (space, period, space); next "
            'sentence prediction needs such pairs)'
        )
    return paragraphs


def some_pair_fits(call, arguments, namespace):
    """No example at all: say why instead of an empty data loader (MXNet's
    training loop would spin forever) or an error of the sampler."""
    paragraphs, max_len = arguments['paragraphs'], arguments['max_len']
    failure = None
    try:
        result = call()
        if len(result[1][0]):
            return result
    except (ValueError, IndexError) as error:  # what empty arrays raise
        failure = error
    lengths = [
        len(a.split()) + len(b.split()) + 3
        for paragraph in paragraphs
        for a, b in zip(paragraph, paragraph[1:])
    ]
    if not lengths:
        raise ValueError(
            '段落がありません (no example: no paragraph with two or more sentences was given)'
        ) from failure
    if failure is not None and min(lengths) <= max_len:
        raise failure  # not for want of examples
    raise ValueError(
        f'max_len={max_len} に収まる文の組がありません (no example: no '
        f'sentence pair fits into max_len={max_len} tokens; the shortest '
        f'needs {min(lengths)} with <cls> and two <sep>; use max_len >= '
        f'{min(lengths)})'
    ) from failure


def padded_arrays_fit(arguments, namespace):
    examples, max_len = arguments['examples'], arguments['max_len']
    needed = len(examples) * max_len * _DATA_BYTES_PER_POSITION
    available = namespace['available_memory']()
    if needed > available:
        size = namespace['format_bytes']
        raise MemoryError(
            f'max_len={max_len} ではサンプルの配列に約 {size(needed)} 必要ですが、空きは '
            f'{size(available)} です (padding {len(examples)} examples to '
            f'max_len={max_len} needs about {size(needed)}, but only '
            f'{size(available)} is free; BERT uses max_len 64 to 512)'
        )


def mask_tokens_explained(call, arguments, namespace):
    try:
        return call()
    except (ValueError, IndexError) as error:
        token_ids, vocab = arguments['token_ids'], arguments['vocab']
        import numpy

        reserved = numpy.isin(token_ids, vocab[RESERVED_TOKENS])
        without = numpy.flatnonzero(reserved.all(axis=1))
        if not len(without):
            raise
        raise ValueError(
            f'サンプル {int(without[0])} にはマスクできるトークンがありません '
            f'(example {int(without[0])} and {len(without) - 1} more have no '
            'token that can be masked: all their tokens are reserved tokens '
            f'{RESERVED_TOKENS}, which the corpus contains as words; remove '
            'those words from the corpus)'
        ) from error


# ------------------------------------------------------------- the tables

_MODEL_SIZES = dict(
    vocab_size=positive_int,
    num_hiddens=positive_int,
    ffn_num_hiddens=positive_int,
    num_heads=positive_int,
    num_layers=positive_int,
)
_ESTIMATE = Contract(
    before=mlm_preds_fit,
    **_MODEL_SIZES,
    batch_size=positive_int,
    max_len=positive_int,
    num_mlm_preds=optional(int_at_least(0, 10)),
    bytes_per_value=positive_int,
)
_BOTH = {
    'format_bytes': Contract(num_bytes=byte_count),
    'estimate_bert_memory': _ESTIMATE,
    'check_bert_fits': Contract(before=mlm_preds_fit, **_ESTIMATE.arguments, device=device_name),
    'available_memory': Contract(device=device_name),
    'check_bert_inputs': Contract(
        before=all_of(arrays('tokens', 'segments', 'valid_lens'), valid_lens_not_nan),
        max_len=positive_int,
    ),
    'MultiHeadSelfAttention.__init__': Contract(num_hiddens=positive_int, num_heads=positive_int),
    'NextSentencePred.__init__': Contract(num_inputs=positive_int),
    'BERTEncoder.forward': Contract(
        before=all_of(arrays('tokens', 'segments', 'valid_lens'), ids_in_range, valid_lens_not_nan)
    ),
    'MaskLM.forward': Contract(before=arrays('X', 'pred_positions')),
    'BERTModel.forward': Contract(
        before=arrays('tokens', 'segments', 'valid_lens', 'pred_positions')
    ),
    'load_data_wiki': Contract(
        batch_size=positive_int, max_len=int_at_least(5, 64), seed=optional(int_at_least(0, 0))
    ),
    '_read_wiki': Contract(around=read_wiki_explained, data_dir=path_like),
    '_make_pretraining_arrays': Contract(around=some_pair_fits, max_len=int_at_least(5, 64)),
    '_pad_bert_inputs': Contract(before=padded_arrays_fit),
    '_mask_tokens': Contract(around=mask_tokens_explained),
    'load_data_wiki_shard': Contract(
        before=rank_of_workers,
        batch_size=positive_int,
        max_len=int_at_least(5, 64),
        rank=int_at_least(0, 0),
        num_workers=positive_int,
        seed=optional(int_at_least(0, 0)),
    ),
    'bert_config': Contract(
        before=heads_divide_hiddens,
        num_hiddens=positive_int,
        ffn_num_hiddens=positive_int,
        num_heads=positive_int,
        num_layers=positive_int,
        dropout=dropout_rate,
    ),
    'save_checkpoint': Contract(path=path_like, step=int_at_least(0, 50)),
    'load_checkpoint': Contract(path=path_like),
    'load_pretrained_bert': Contract(path=path_like, device=optional(device_name)),
    'get_bert_encoding': Contract(tokens_a=token_list, tokens_b=token_list),
}
_ENCODER_MXNET = Contract(
    before=parameters_fit, **_MODEL_SIZES, dropout=dropout_rate, max_len=positive_int
)
_ENCODER_TORCH = Contract(
    before=parameters_fit,
    **_MODEL_SIZES,
    dropout=dropout_rate,
    max_len=positive_int,
    norm_shape=norm_shape,
    ffn_num_input=positive_int,
)
CONTRACTS = {
    'mxnet': {
        **_BOTH,
        'attention_lengths': Contract(num_heads=positive_int),
        'PositionWiseFFN.__init__': Contract(
            num_hiddens=positive_int, ffn_num_hiddens=positive_int
        ),
        'AddNorm.__init__': Contract(num_hiddens=positive_int, dropout=dropout_rate),
        'EncoderBlock.__init__': Contract(
            num_hiddens=positive_int,
            ffn_num_hiddens=positive_int,
            num_heads=positive_int,
            dropout=dropout_rate,
        ),
        'BERTEncoder.__init__': _ENCODER_MXNET,
        'MaskLM.__init__': Contract(vocab_size=positive_int, num_hiddens=positive_int),
        'BERTModel.__init__': _ENCODER_MXNET,
    },
    'torch': {
        **_BOTH,
        'packing_indices': Contract(before=arrays('tokens', 'valid_lens')),
        'pack_tokens': Contract(before=arrays('X', 'pack_index')),
        'unpack_tokens': Contract(before=arrays('X', 'pack_index', 'is_valid')),
        'check_sizes_match': Contract(num_hiddens=positive_int),
        'PositionWiseFFN.__init__': Contract(
            ffn_num_input=positive_int, ffn_num_hiddens=positive_int, ffn_num_outputs=positive_int
        ),
        'AddNorm.__init__': Contract(norm_shape=norm_shape, dropout=dropout_rate),
        'EncoderBlock.__init__': Contract(
            num_hiddens=positive_int,
            norm_shape=norm_shape,
            ffn_num_input=positive_int,
            ffn_num_hiddens=positive_int,
            num_heads=positive_int,
            dropout=dropout_rate,
        ),
        'BERTEncoder.__init__': _ENCODER_TORCH,
        'MaskLM.__init__': Contract(
            vocab_size=positive_int, num_hiddens=positive_int, num_inputs=positive_int
        ),
        'BERTModel.__init__': _ENCODER_TORCH,
    },
}


# ------------------------------------------------------------ the wrapper


def _checked(function, contract, where, namespace):
    signature = inspect.signature(function)

    @functools.wraps(function)  # keeps the signature and docstring
    def checked(*args, **kwargs):
        try:
            arguments = signature.bind(*args, **kwargs).arguments
        except TypeError:
            return function(*args, **kwargs)  # Python's own message
        try:
            for name, check in contract.arguments.items():
                if name in arguments:
                    check(name, arguments[name])
            if contract.before is not None:
                # whole-call checks see the defaults too (bert_config(num_heads=3) and its
                # default num_hiddens=128)
                defaults = {
                    name: parameter.default
                    for name, parameter in signature.parameters.items()
                    if parameter.default is not inspect.Parameter.empty
                }
                contract.before({**defaults, **arguments}, namespace)
        except (TypeError, ValueError, MemoryError) as error:
            raise type(error)(f'{where}: {error}') from None
        if contract.around is not None:
            result = contract.around(lambda: function(*args, **kwargs), arguments, namespace)
        else:
            result = function(*args, **kwargs)
        if contract.after is not None:
            try:
                contract.after(result, arguments, namespace)
            except ValueError as error:
                raise ValueError(f'{where}: {error}') from None
        return result

    checked.__checked__ = True
    return checked


def apply_checks(namespace, framework):
    """Wrap the functions and the methods of the classes named in
    CONTRACTS[framework] ('mxnet' or 'torch') inside `namespace`."""
    namespace['_checks_framework'] = framework
    for qualified_name, contract in CONTRACTS[framework].items():
        owner_name, _, method = qualified_name.partition('.')
        if not method:
            function = namespace[owner_name]
            if not getattr(function, '__checked__', False):
                namespace[owner_name] = _checked(function, contract, owner_name, namespace)
            continue
        owner = namespace[owner_name]
        function = owner.__dict__[method]  # defined by the class itself
        if not getattr(function, '__checked__', False):
            setattr(owner, method, _checked(function, contract, owner_name, namespace))
