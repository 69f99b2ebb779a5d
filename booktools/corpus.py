"""The offline WikiText-2 corpus, and the one rule that points the book's runs at it.

The build (``python -m booktools execute``) and the tests (``tests/conftest.py``) call
:func:`use_offline_corpus`; the benchmark's kernels get :func:`corpus_environment`. Nothing else
sets ``D2L_WIKITEXT2_DIR``.
"""

import os
import pathlib
import shutil

from .paths import DATA_DIR, OFFLINE_CORPUS_DIR

DIR_ENV = 'D2L_WIKITEXT2_DIR'
# The real validation and test splits, CC BY-SA 3.0 (see data/wikitext-2/README.md)
SHARED_SPLITS = DATA_DIR / 'wikitext-2'


def offline_corpus(target=None, shared_data=SHARED_SPLITS, copies=1):
    """A WikiText-2 directory made of the real validation and test splits.

    It is NOT the official training split: ``wiki.train.tokens`` is the validation and test
    text concatenated (``copies`` times), so that tests and CI run without the internet.
    Without a ``target`` it is ``_build/wikitext-2-offline`` (``-x<copies>`` for more copies).
    """
    if target is None:
        target = OFFLINE_CORPUS_DIR
        if copies != 1:
            target = target.with_name(f'{target.name}-x{copies}')
    target, shared_data = pathlib.Path(target), pathlib.Path(shared_data)
    parts = [shared_data / 'wiki.valid.tokens', shared_data / 'wiki.test.tokens']
    missing = [str(p) for p in parts if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f'offline corpus files missing: {", ".join(missing)}; '
            'they are part of the repository (data/wikitext-2/): restore them '
            'with `git checkout -- data/wikitext-2`'
        )
    train = target / 'wiki.train.tokens'
    if not train.exists():
        target.mkdir(parents=True, exist_ok=True)
        tmp = train.with_suffix('.tmp')
        tmp.write_bytes(b''.join(p.read_bytes() for p in parts) * copies)
        for p in parts:
            shutil.copy2(p, target / p.name)
        os.replace(tmp, train)
    return target


def use_offline_corpus():
    """Point D2L_WIKITEXT2_DIR at the offline corpus, unless it is already set."""
    if DIR_ENV not in os.environ:
        os.environ[DIR_ENV] = str(offline_corpus())
    return pathlib.Path(os.environ[DIR_ENV])


def corpus_environment(directory):
    """The environment a notebook kernel needs to read the WikiText-2 files in ``directory``."""
    return {DIR_ENV: str(directory)}
