"""WikiText-2 (wikitext-2-v1) を用意し、そのディレクトリを返す。

Framework independent; standard library only (reading the Hugging Face Hub
Parquet files additionally needs pyarrow, or pandas with fastparquet).

    from d2l_extras.wikitext2 import wikitext2_dir
    data_dir = wikitext2_dir()  # a pathlib.Path holding wiki.train.tokens

Command line: ``python -m d2l_extras.wikitext2`` prints the directory
(on failure: only the explanation on stderr, exit status 1).

データの探し方 (in this order):

1. 環境変数 ``D2L_WIKITEXT2_DIR`` が設定されていれば、そのディレクトリをそのまま使う。
   wiki.train.tokens が無ければ、変数名とディレクトリを示すエラーになる。
2. キャッシュ ``$D2L_EXTRAS_CACHE_DIR`` (既定は ``~/.cache/d2l_extras``;
   XDG_CACHE_HOME があればその下) の ``wikitext-2/``。3 つのファイルの SHA-1 が
   公式の値と一致するときだけ使う。キャッシュの ``wikitext-2-v1.zip`` は
   SHA-1 を検証してから展開し、一致しなければ削除して取り直す。
3. ミラーを順に試す (``D2L_WIKITEXT2_MIRRORS`` に空白区切りの URL を入れると
   一覧を置き換える)。URL のパスが ``/`` で終われば Hugging Face Hub と同じ配置の
   Parquet ディレクトリ、それ以外は wikitext-2-v1.zip とみなす。
   どれも検証に通らなければ ``WikiText2Unavailable`` を送出し、各 URL の失敗理由と
   手で用意する方法をメッセージに書く。

Downloads go to a temporary file inside the cache directory and are renamed
into place only after their checksum verifies, so an interrupted or failed
run leaves nothing that a later run would trust. What verified is kept: a
cached archive is deleted only when its checksum fails, a verified directory
is used as it is (also when the cache is read-only), and of several processes
filling one cache at once the first one's verified directory stays.
"""

import argparse
import codecs
import contextlib
import errno
import hashlib
import http.client
import importlib
import math
import numbers
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path

try:
    import fcntl  # POSIX; without it (Windows) installs run unlocked
except ImportError:
    fcntl = None

ARCHIVE_NAME = 'wikitext-2-v1.zip'
# SHA-1 of the published archive and of its three members (wikitext-2/...).
ARCHIVE_SHA1 = '3c914d17d80b1459be871a5039ac23e752a53cbe'
MEMBER_SHA1S = {
    'wiki.train.tokens': '863f29c46ef9d167fff4940ec821195882fe29d1',
    'wiki.valid.tokens': '0418625c8b4da6e4b5c7a0b9e78d4ae8f7ee5422',
    'wiki.test.tokens': 'c7b8ce0aa086fb34dab808c5c49224211eb2b172',
}
TRAIN_FILE = 'wiki.train.tokens'
DATA_DIR_NAME = 'wikitext-2'  # the folder inside the archive and in the cache

# Tried in this order. The data set author's mirror comes first because it
# serves the very archive whose SHA-1 is published. The Hub Parquet files are
# rebuilt into the .tokens files and checked against the members' SHA-1. The
# original S3 URL answers 403 since 2024 (d2l-en #2588); it stays last because
# it costs one quick request only after the others failed, and it is the URL
# older material points to, so the error message explains why it fails.
DEFAULT_MIRRORS = (
    'https://wikitext.smerity.com/wikitext-2-v1.zip',
    'https://huggingface.co/datasets/Salesforce/wikitext/resolve/main/wikitext-2-v1/',
    'https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip',
)

DIR_ENV = 'D2L_WIKITEXT2_DIR'
MIRRORS_ENV = 'D2L_WIKITEXT2_MIRRORS'
CACHE_ENV = 'D2L_EXTRAS_CACHE_DIR'

# wikitext.smerity.com refuses Python's default User-Agent (Python-urllib/3.x).
USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'
DEFAULT_TIMEOUT = 30.0  # seconds for connecting and for each read
DEFAULT_DEADLINE = 600.0  # seconds for one whole download (4.5 MB at 8 KB/s)

# The Hub keeps one Parquet file per split; its `text` column holds the lines.
PARQUET_FILES = {
    'train-00000-of-00001.parquet': 'wiki.train.tokens',
    'validation-00000-of-00001.parquet': 'wiki.valid.tokens',
    'test-00000-of-00001.parquet': 'wiki.test.tokens',
}

_ZIP_MAGIC = b'PK\x03\x04'
_PARQUET_MAGIC = b'PAR1'
_MAX_BYTES = 256 * 2**20  # far above WikiText-2 (4.5 MB zip, 13 MB text)
_PROGRESS_MIN_BYTES = 2**20  # show progress for downloads this long ...
_PROGRESS_AFTER_SECONDS = 2.0  # ... and for any download that takes this long
_PROGRESS_EVERY_SECONDS = 10.0  # one line per this many seconds off a terminal
_TMP_PREFIX = '.d2l-tmp-'  # every temporary in the cache starts with this
_STALE_SECONDS = 3600  # leftovers of killed runs older than this are removed
_LOCK_NAME = '.d2l-install.lock'  # serializes replacing a damaged directory
# Errors of the local disk, not of the data: another mirror cannot help.
_LOCAL_FAULTS = {errno.ENOSPC, errno.EROFS, errno.EFBIG, getattr(errno, 'EDQUOT', errno.ENOSPC)}
# What a damaged or unusual zip raises besides BadZipFile.
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, zlib.error)


class WikiText2Unavailable(RuntimeError):
    """WikiText-2 を用意できなかった。メッセージに理由と対処法を書く。

    `attempts` lists (source, reason) pairs, one per source tried.
    """

    def __init__(self, message, attempts=()):
        super().__init__(message)
        self.attempts = list(attempts)


class _SourceFailed(Exception):
    """One source gave no verified data; str() is the reason shown."""


def wikitext2_dir(
    *,
    mirrors=None,
    cache_dir=None,
    archive_sha1=ARCHIVE_SHA1,
    member_sha1s=None,
    timeout=DEFAULT_TIMEOUT,
    deadline=DEFAULT_DEADLINE,
):
    """Return the directory (pathlib.Path) holding wiki.train.tokens.

    mirrors: URLs to try, in order (default: $D2L_WIKITEXT2_MIRRORS split at
        white space, else DEFAULT_MIRRORS). A URL whose path ends with '/'
        is a Parquet directory laid out like the Hub's; others are the zip.
    cache_dir: download cache (default: $D2L_EXTRAS_CACHE_DIR, else
        ~/.cache/d2l_extras). archive_sha1 and member_sha1s (file name ->
        SHA-1) define verified data; tests inject those of a fixture.
    timeout: seconds for connecting and for each read; deadline: seconds for
        one whole download (a mirror that trickles is given up after it).
    Raises WikiText2Unavailable when no source gives verified data, and
    ValueError or TypeError for a bad argument.
    """
    timeout = _seconds('timeout', timeout)
    deadline = _seconds('deadline', deadline)
    expected = dict(MEMBER_SHA1S if member_sha1s is None else member_sha1s)
    if TRAIN_FILE not in expected:
        raise ValueError(f'member_sha1s must include {TRAIN_FILE!r}')
    if mirrors is not None:
        mirrors = _mirror_list(mirrors)  # a bad argument fails in any case
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(
            f'cache_dir must be a path (str or pathlib.Path), got {type(cache_dir).__name__}'
        )
    given_dir = os.environ.get(DIR_ENV, '').strip()
    if given_dir:
        data_dir = _dir_from_environment(given_dir)
    else:
        if cache_dir is None:
            cache_dir = _default_cache_dir()
        data_dir = _dir_from_cache_or_mirrors(
            mirrors if mirrors is not None else _mirror_list(None),
            Path(cache_dir).expanduser().absolute(),
            archive_sha1,
            expected,
            timeout,
            deadline,
        )
    train_sha1 = _sha1_of_utf8_text(data_dir / TRAIN_FILE)
    _notice_if_not_official(train_sha1, expected[TRAIN_FILE])
    return data_dir


def _seconds(name, value):
    """A positive, finite number of seconds, or a clear error naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f'{name} must be a number of seconds such as 120, got {type(value).__name__} {value!r}'
        )
    if not (math.isfinite(value) and value > 0):
        raise ValueError(
            f'{name} は正の有限の秒数です ({name} must be a '
            f'positive, finite number of seconds such as 120, '
            f'got {value!r})'
        )
    return float(value)


def _mirror_list(mirrors):
    if mirrors is None:
        given = os.environ.get(MIRRORS_ENV, '').split()
        origin, mirrors = f'環境変数 {MIRRORS_ENV}', given or DEFAULT_MIRRORS
    elif isinstance(mirrors, str):
        origin, mirrors = 'mirrors', mirrors.split()
    elif isinstance(mirrors, (list, tuple)) and all(isinstance(url, str) for url in mirrors):
        origin = 'mirrors'
    else:
        raise TypeError(
            'mirrors must be a list of URL strings (or one string '
            f'of URLs separated by spaces), got {mirrors!r:.80}'
        )
    mirrors = list(mirrors)
    for index, url in enumerate(mirrors):
        if urllib.parse.urlsplit(url).scheme.lower() not in ('http', 'https', 'file'):
            problem = _bad_mirror_entry(url, mirrors[index - 1] if index else '')
            message = f'{origin} の {url!r} は URL ではありません (not a URL): {problem}'
            if origin == 'mirrors':
                raise ValueError(message)
            raise WikiText2Unavailable(message)
    return mirrors


def _bad_mirror_entry(entry, previous):
    """Why `entry` is not a mirror URL, and the URL that was probably meant."""
    if previous.lower().startswith('file:'):
        return (
            'file:// の URL に空白があると、そこで区切られます。空白は %20 と'
            '書いてください (a space splits the list; write it as %20: '
            f'{previous}%20{entry})'
        )
    if re.match(r'[A-Za-z]:[\\/]', entry):
        return (
            'Windows のパスはこの Python では開けません。この PC 上のパスを '
            'file:// の URL で書いてください (a Windows path; give a path '
            'of this machine as a file:// URL, e.g. '
            'file:///mnt/c/data/wikitext-2-v1.zip under WSL)'
        )
    return (
        'ローカルのファイルは file:// の URL で書いてください (give a local '
        f'file as a file:// URL: {Path(entry).expanduser().absolute().as_uri()})'
    )


def _default_cache_dir():
    configured = os.environ.get(CACHE_ENV, '').strip()
    if configured:
        return Path(configured)
    base = os.environ.get('XDG_CACHE_HOME', '').strip()
    return Path(base or Path.home() / '.cache') / 'd2l_extras'


def _dir_from_environment(value):
    directory = Path(value).expanduser().absolute()
    if (directory / TRAIN_FILE).is_file():
        return directory
    if directory.is_dir():
        problem = f'{TRAIN_FILE} がありません (no {TRAIN_FILE} there)'
    elif directory.name == TRAIN_FILE and directory.exists():
        problem = (
            f'{TRAIN_FILE} そのものではなく、それを含むディレクトリ '
            f'{directory.parent} を指定してください (this is the file '
            'itself; give the directory that holds it)'
        )
    elif directory.is_file() and zipfile.is_zipfile(directory):
        problem = (
            f'zip ファイルです。展開してできた {DATA_DIR_NAME}/ を指定する'
            f'か、zip をキャッシュに {ARCHIVE_NAME} として置いて {DIR_ENV} '
            f'を未設定にしてください (a zip: extract it and give the '
            f'{DATA_DIR_NAME}/ folder, or put it into the cache as '
            f'{ARCHIVE_NAME} and unset {DIR_ENV})'
        )
    elif directory.exists():
        problem = 'ディレクトリではなくファイルです (a file, not a directory)'
    else:
        problem = 'ディレクトリがありません (no such directory)'
    message = (
        f'環境変数 {DIR_ENV} が指すディレクトリ {directory} を使えません: '
        f'{problem}。\n'
        f'wikitext-2-v1.zip を展開してできた {TRAIN_FILE} のあるディレクトリを'
        f'指定するか、自動でダウンロードするなら {DIR_ENV} を未設定に'
        f'してください (point {DIR_ENV} at the directory holding {TRAIN_FILE}, '
        f'or unset it to download).'
    )
    nested = directory / DATA_DIR_NAME / TRAIN_FILE
    if nested.is_file():
        message += f'\n{nested.parent} を指定するつもりでしたか? (did you mean {nested.parent}?)'
    raise WikiText2Unavailable(message)


def _dir_from_cache_or_mirrors(mirrors, cache_dir, archive_sha1, expected, timeout, deadline):
    data_dir = cache_dir / DATA_DIR_NAME
    # Verified data is used as it is, also from a read-only cache (a
    # teacher's prepared copy): only the steps below need to write.
    if _holds_expected_files(data_dir, expected):
        return data_dir
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(cache_dir, os.W_OK | os.X_OK):
            raise PermissionError('not writable')
    except OSError as error:
        raise WikiText2Unavailable(
            f'キャッシュディレクトリ {cache_dir} に書き込めません ({error})。'
            f'書き込める場所を環境変数 {CACHE_ENV} に設定するか、'
            f'{DIR_ENV} でデータのディレクトリを指定してください '
            f'(set {CACHE_ENV} to a writable folder, or {DIR_ENV}).'
        ) from None
    _remove_stale_temporaries(cache_dir)

    attempts = []
    cached_archive = cache_dir / ARCHIVE_NAME
    if cached_archive.exists() or cached_archive.is_symlink():
        problem = _install_cached_archive(cached_archive, cache_dir, archive_sha1, expected)
        if problem is None:
            return data_dir
        attempts.append((f'キャッシュ (cache) {cached_archive}', problem))

    for url in mirrors:
        try:
            if urllib.parse.urlsplit(url).path.endswith('/'):
                _install_from_parquet_dir(url, cache_dir, expected, timeout, deadline)
            else:
                _install_from_archive_url(url, cache_dir, archive_sha1, expected, timeout, deadline)
            return data_dir
        except OSError as error:
            if _is_local_fault(error):  # the next mirror would fail alike
                raise WikiText2Unavailable(_cache_write_failed(error, cache_dir)) from None
            attempts.append((url, _reason(error, timeout)))
        except (_SourceFailed, http.client.HTTPException, ValueError, *_ZIP_ERRORS) as error:
            attempts.append((url, _reason(error, timeout)))
    raise WikiText2Unavailable(_unavailable_message(attempts, cache_dir, archive_sha1), attempts)


def _install_cached_archive(archive, cache_dir, archive_sha1, expected):
    """Install the archive a reader put into the cache; None if that worked,
    else the reason shown. Only a failed checksum deletes it: a verified
    archive is the reader's offline copy, whatever else goes wrong."""
    if not archive.is_file():
        return 'ファイルではありません (not a regular file); そのままにしました (left in place)'
    try:
        actual = _sha1_of_file(archive)
    except OSError as error:
        return f'読めません (cannot read: {error}); そのままにしました (left in place)'
    if actual != archive_sha1:
        # E.g. an HTML error page saved under the zip's name (d2l-en #2588).
        archive.unlink(missing_ok=True)
        return (
            f'SHA-1 が一致しません (checksum mismatch: got {actual}, '
            f'expected {archive_sha1}); 削除しました (discarded)'
        )
    try:
        _install_archive(archive, cache_dir, expected)
    except OSError as error:  # the disk's fault (full, quota, I/O), not its
        raise WikiText2Unavailable(_cache_write_failed(error, cache_dir, kept=archive)) from None
    except (_SourceFailed, *_ZIP_ERRORS) as error:
        return (
            f'{_reason(error, None)}; SHA-1 は一致したので残しました '
            '(checksum verified, left in place)'
        )
    return None


def _is_local_fault(error):
    return getattr(error, 'errno', None) in _LOCAL_FAULTS


def _cache_write_failed(error, cache_dir, kept=None):
    lines = [
        f'キャッシュディレクトリ {cache_dir} に書き込めませんでした '
        f'(could not write to the cache: {error})。'
    ]
    if kept is not None:
        lines.append(
            f'SHA-1 を検証した {kept} はそのまま残してあります (the verified archive was kept).'
        )
    lines.append(
        f'ディスクの空きを増やしてもう一度実行するか、空きのある別の場所を'
        f'環境変数 {CACHE_ENV} に設定してください (free some disk '
        f'space and run again, or set {CACHE_ENV} to a folder with '
        'room).'
    )
    return '\n'.join(lines)


def _reason(error, timeout):
    """A one-line reason, for the reader, why a source failed."""
    if isinstance(error, _SourceFailed):
        return str(error)
    cause = getattr(error, 'reason', error)  # URLError wraps the real cause
    if isinstance(cause, TimeoutError):
        return f'タイムアウト (timeout after {timeout:g} s)'
    if isinstance(error, _ZIP_ERRORS):
        return f'壊れた zip です (bad zip: {error})'
    if isinstance(error, urllib.error.URLError):
        return f'接続できません (connection failed: {cause})'
    return f'{type(error).__name__}: {error}'


def _install_from_archive_url(url, cache_dir, archive_sha1, expected, timeout, deadline):
    part, sha1 = _download(
        url, cache_dir, timeout=timeout, deadline=deadline, magic=_ZIP_MAGIC, kind='zip'
    )
    try:
        _check_sha1(sha1, archive_sha1)
        _install_archive(part, cache_dir, expected)
        # Keep the verified archive so that a damaged extraction can be
        # redone without the network; the data is in place even if not.
        with contextlib.suppress(OSError):
            os.replace(part, cache_dir / ARCHIVE_NAME)
    finally:
        part.unlink(missing_ok=True)


def _install_archive(archive, cache_dir, expected):
    """Extract into a temporary folder, verify, then rename into place."""
    work = Path(tempfile.mkdtemp(dir=cache_dir, prefix=_TMP_PREFIX + 'zip-'))
    try:
        with zipfile.ZipFile(archive) as zip_file:
            _extract_safely(zip_file, work)
        _verify_files(work / DATA_DIR_NAME, expected)
        _move_into_place(work / DATA_DIR_NAME, cache_dir / DATA_DIR_NAME, expected)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _extract_safely(zip_file, target):
    """Refuse the whole archive if a member would land outside `target`."""
    target = target.resolve()
    total_size = 0
    for member in zip_file.infolist():
        destination = (target / member.filename).resolve()
        if not destination.is_relative_to(target):
            raise _SourceFailed(
                'アーカイブに展開先の外を指すパスがあります '
                f'(unsafe path in archive: {member.filename!r})'
            )
        total_size += member.file_size
    if total_size > _MAX_BYTES:
        raise _SourceFailed(f'展開後が大きすぎます (too large when extracted: {total_size} bytes)')
    zip_file.extractall(target)


def _install_from_parquet_dir(base_url, cache_dir, expected, timeout, deadline):
    """Rebuild the .tokens files from the Hub's Parquet files."""
    engine = _parquet_engine()  # checked before any download
    work = Path(tempfile.mkdtemp(dir=cache_dir, prefix=_TMP_PREFIX + 'parquet-'))
    try:
        rebuilt = work / DATA_DIR_NAME
        rebuilt.mkdir()
        for parquet_name, tokens_name in PARQUET_FILES.items():
            url = urllib.parse.urljoin(base_url, parquet_name)
            try:
                part, _ = _download(
                    url,
                    work,
                    timeout=timeout,
                    deadline=deadline,
                    magic=_PARQUET_MAGIC,
                    kind='Parquet',
                )
                rows = _read_parquet_text(part, engine)
                part.unlink()
            except OSError as error:
                if _is_local_fault(error):
                    raise
                raise _SourceFailed(f'{parquet_name}: {_reason(error, timeout)}') from error
            except (_SourceFailed, http.client.HTTPException, ValueError) as error:
                raise _SourceFailed(f'{parquet_name}: {_reason(error, timeout)}') from error
            (rebuilt / tokens_name).write_bytes(tokens_text_from_rows(rows).encode('utf-8'))
        _verify_files(rebuilt, expected)
        _move_into_place(rebuilt, cache_dir / DATA_DIR_NAME, expected)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def tokens_text_from_rows(rows):
    """Rebuild a .tokens file's text from the Hub's `text` column.

    Each row is one line of the file, newline included, except that the Hub
    conversion stored whitespace-only lines (" \\n" in WikiText-2) as "".
    """
    return ''.join(row if row else ' \n' for row in rows)


def _parquet_engine():
    """Name a Parquet reader that imports, or fail saying how to get one."""
    problems = []
    for engine, modules in (
        ('pyarrow', ['pyarrow.parquet']),
        ('fastparquet', ['fastparquet', 'pandas']),
    ):
        try:
            for module in modules:
                importlib.import_module(module)
            return engine
        except ImportError as error:  # missing, or built for another NumPy
            problems.append(f'{engine}: {error}')
    raise _SourceFailed(
        'スキップ: Parquet を読むには pyarrow が必要です (skipped: no usable '
        "Parquet reader; pip install pyarrow, or 'pyarrow<26' with NumPy 1.x) "
        f'[{"; ".join(problems)}]'
    )


def _read_parquet_text(path, engine):
    try:
        if engine == 'pyarrow':
            import pyarrow.parquet

            table = pyarrow.parquet.read_table(path, columns=['text'])
            rows = table.column('text').to_pylist()
        else:
            import pandas

            frame = pandas.read_parquet(path, columns=['text'], engine=engine)
            rows = frame['text'].tolist()
    except (KeyError, ValueError, OSError) as error:
        raise _SourceFailed(f'Parquet を読めません (cannot read Parquet: {error})') from error
    odd = next((row for row in rows if row is not None and not isinstance(row, str)), None)
    if odd is not None:
        raise _SourceFailed(
            f'Parquet の text 列が文字列ではありません (column '
            f"'text' holds {type(odd).__name__} such as "
            f'{odd!r:.40}, expected strings)'
        )
    return rows


def _download(url, directory, *, timeout, deadline, magic, kind):
    """Download url into a temporary file in directory; return (path, SHA-1).

    The file is removed again if anything goes wrong, Ctrl-C included.
    """
    give_up_at = time.monotonic() + deadline
    request = urllib.request.Request(url, headers={'User-Agent': USER_AGENT})
    handle, name = tempfile.mkstemp(dir=directory, suffix='.part', prefix=_TMP_PREFIX + 'download-')
    part = Path(name)
    watchdog = _Watchdog(deadline)
    try:
        with os.fdopen(handle, 'wb') as out, watchdog:
            try:
                response = watchdog.opener.open(request, timeout=timeout)
            except urllib.error.HTTPError as error:
                error.close()
                raise _SourceFailed(f'HTTP {error.code} {error.reason}') from None
            with response:
                sha1 = _copy_checked(response, out, url, magic, kind, give_up_at, deadline)
        if watchdog.fired:  # the body may have been cut short without an error
            raise _SourceFailed(_deadline_passed(deadline))
        return part, sha1
    except BaseException as error:
        part.unlink(missing_ok=True)
        if watchdog.fired and isinstance(error, Exception):  # what the closed socket made fail
            raise _SourceFailed(_deadline_passed(deadline)) from None
        raise


def _deadline_passed(deadline, received=None):
    got = '' if received is None else f', {_megabytes(received)} received'
    return (
        f'期限切れ (deadline: not finished after {deadline:g} s{got}); 回線が遅いなら '
        '--deadline (関数では deadline=) を長くしてください'
    )


class _Watchdog:
    """Shuts the download's sockets down when its deadline passes.

    urllib's timeout bounds each read only: a server that sends its headers a byte at a
    time would never time out, and urllib has no overall deadline of its own.
    """

    def __init__(self, seconds):
        self.sockets, self.fired = [], False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        handlers = [_watched_handler(base, self.sockets) for base in _HTTP_HANDLERS]
        self.opener = urllib.request.build_opener(*handlers)

    def _fire(self):
        self.fired = True
        for sock in list(self.sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # a blocked read returns at once

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()


_HTTP_HANDLERS = (urllib.request.HTTPHandler, urllib.request.HTTPSHandler)


def _watched_handler(base, sockets):
    """An instance of urllib's handler ``base`` whose connections record their sockets."""

    class Handler(base):
        def do_open(self, http_class, req, **kwargs):
            class Connection(http_class):
                def connect(self):
                    super().connect()
                    sockets.append(self.sock)

            return super().do_open(Connection, req, **kwargs)

    return Handler()


def _copy_checked(response, out, url, magic, kind, give_up_at, deadline):
    status = getattr(response, 'status', None)  # None for file:// URLs
    if status is not None and status != 200:
        raise _SourceFailed(f'HTTP {status} (expected 200)')
    content_type = response.headers.get('Content-Type', '')
    media_type = content_type.split(';')[0].strip().lower()
    if urllib.parse.urlsplit(url).scheme.lower() == 'file':
        # urllib guesses a local file's type from its name ('text/plain'
        # for .parquet); only the first bytes below say what it is.
        media_type = ''
    if 'html' in media_type:
        raise _SourceFailed(
            'ファイルではなく HTML ページが返されました '
            '(got an HTML page, Content-Type: '
            f'{content_type})'
        )
    if media_type.startswith('text/') or media_type == 'application/json':
        raise _SourceFailed(
            f'ファイルではなく {media_type} が返されました (got {media_type}, not a {kind} file)'
        )
    try:
        declared = int(response.headers.get('Content-Length'))
    except (TypeError, ValueError):
        declared = None  # length not announced
    if declared is not None and declared > _MAX_BYTES:
        raise _SourceFailed(f'大きすぎます (too large: {declared} bytes)')

    digest = hashlib.sha1(usedforsecurity=False)  # an integrity check
    head = b''  # the first bytes, to recognize an HTML page early
    received = 0
    progress = _Progress(url, declared)
    finished = False
    try:
        # read1 returns what has arrived (read would wait for the full 64 KiB),
        # so an error page is recognized even if the server then stalls.
        while chunk := response.read1(64 * 1024):
            # Each read waits at most `timeout`; this bounds the whole download
            # of a mirror that trickles a byte at a time.
            if time.monotonic() > give_up_at:
                raise _SourceFailed(_deadline_passed(deadline, received))
            if len(head) < 64:
                head += chunk[: 64 - len(head)]
                if len(head) >= len(magic) and not head.startswith(magic):
                    raise _SourceFailed(_not_a_file(kind, head))
            received += len(chunk)
            if received > _MAX_BYTES:
                raise _SourceFailed(f'大きすぎます (too large: over {_MAX_BYTES} bytes)')
            digest.update(chunk)
            out.write(chunk)
            progress.update(received)
        if time.monotonic() > give_up_at:  # the watchdog closed the connection
            raise _SourceFailed(_deadline_passed(deadline, received))
        out.flush()  # a full disk shows here, before 'finished' is printed
        finished = True
    finally:
        progress.close(finished)
    # http.client returns a short body without error when the connection
    # closes early, so compare with the announced length ourselves.
    if declared is not None and received != declared:
        raise _SourceFailed(
            f'ダウンロードが途中で切れました (truncated: {received} of {declared} bytes)'
        )
    if not head.startswith(magic):
        raise _SourceFailed(_not_a_file(kind, head))
    return digest.hexdigest()


def _not_a_file(kind, head):
    looks_like = ''
    if head.lstrip().startswith(b'<'):
        looks_like = '; HTML ページのようです (looks like an HTML page)'
    return f'{kind} ファイルではありません (not a {kind}: starts with {head[:24]!r}){looks_like}'


class _Progress:
    """A light progress display on stderr for long or slow downloads.

    On a terminal one line is redrawn in place; elsewhere (Jupyter, logs) a
    start line, a line every _PROGRESS_EVERY_SECONDS and an end line.
    """

    def __init__(self, url, total):
        self.url, self.total = url, total
        self.received = 0
        self.started = False
        self.on_terminal = sys.stderr is not None and sys.stderr.isatty()
        self.begun_at = time.monotonic()
        self.last_drawn = 0.0

    def update(self, received):
        self.received = received
        now = time.monotonic()
        if not self.started and (
            max(self.total or 0, received) >= _PROGRESS_MIN_BYTES
            or now - self.begun_at >= _PROGRESS_AFTER_SECONDS
        ):
            self.started, self.last_drawn = True, now
            if not self.on_terminal:
                size = f' ({_megabytes(self.total)})' if self.total else ''
                _say(f'ダウンロード中 (downloading) {self.url}{size} ...')
        if not self.started:
            return
        if self.on_terminal and now - self.last_drawn > 0.2:
            self.last_drawn = now
            self._draw()
        elif not self.on_terminal and now - self.last_drawn >= _PROGRESS_EVERY_SECONDS:
            self.last_drawn = now
            _say(f'  {self._amount()}')

    def _amount(self):
        done = _megabytes(self.received)
        if self.total:
            percent = 100 * self.received // self.total
            done = f'{percent:3d}% {done} / {_megabytes(self.total)}'
        return done

    def _draw(self):
        print(f'\r{self._amount()}  {self.url}', end='', file=sys.stderr, flush=True)

    def close(self, finished):
        """End the display; `finished` says whether the transfer completed
        (after an error or Ctrl-C the error explains, not a 'finished')."""
        if not self.started:
            return
        if self.on_terminal:
            self._draw()
            print(file=sys.stderr, flush=True)
        elif finished:
            _say(f'終了 (finished): {_megabytes(self.received)}')
        else:
            _say(f'中断 (stopped) after {_megabytes(self.received)}')


def _megabytes(size):
    return f'{size / 1e6:.1f} MB'


def _check_sha1(actual, expected):
    if actual != expected:
        raise _SourceFailed(
            f'SHA-1 が一致しません (checksum mismatch: got {actual}, expected {expected})'
        )


def _sha1_of_file(path):
    digest = hashlib.sha1(usedforsecurity=False)
    with open(path, 'rb') as file:
        while block := file.read(2**20):
            digest.update(block)
    return digest.hexdigest()


def _holds_expected_files(directory, expected):
    try:
        return all(
            (directory / name).is_file() and _sha1_of_file(directory / name) == sha1
            for name, sha1 in expected.items()
        )
    except OSError:  # unreadable, or moved away by another process meanwhile
        return False


def _verify_files(directory, expected):
    for name, sha1 in expected.items():
        path = directory / name
        if not path.is_file():
            raise _SourceFailed(
                f'{DATA_DIR_NAME}/{name} がありません (missing {DATA_DIR_NAME}/{name})'
            )
        actual = _sha1_of_file(path)
        if actual != sha1:
            raise _SourceFailed(
                f'{name} の SHA-1 が一致しません (checksum mismatch: got {actual}, expected {sha1})'
            )


def _move_into_place(new_dir, final_dir, expected):
    """Put new_dir at final_dir by renames: never a half-copied folder.

    Several processes may fill one cache at once (a classroom on a shared
    home directory). A verified final_dir is never replaced: whoever finds
    one uses it, and the caller discards its own copy. Only an unverified
    final_dir is moved aside, under a lock, so that no process removes a
    directory that another has just verified and returned.
    """
    with contextlib.suppress(OSError):
        os.rename(new_dir, final_dir)  # fails if final_dir is not empty
        return
    with _install_lock(final_dir.parent):
        if _holds_expected_files(final_dir, expected):
            return
        if final_dir.exists() or final_dir.is_symlink():  # stale or damaged
            trash = Path(tempfile.mkdtemp(dir=final_dir.parent, prefix=_TMP_PREFIX + 'old-'))
            with contextlib.suppress(FileNotFoundError):
                os.replace(final_dir, trash / final_dir.name)
            shutil.rmtree(trash, ignore_errors=True)
        try:
            os.rename(new_dir, final_dir)
        except OSError:
            # A process without the lock installed verified data meanwhile.
            if not _holds_expected_files(final_dir, expected):
                raise


@contextlib.contextmanager
def _install_lock(cache_dir):
    """Hold an exclusive lock on the cache's lock file (none without fcntl)."""
    if fcntl is None:
        yield
        return
    with open(cache_dir / _LOCK_NAME, 'a') as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _remove_stale_temporaries(cache_dir):
    """Remove temporaries left by killed runs (they are never trusted).

    Only old ones go, so that a download running in another process is safe.
    """
    now = time.time()
    for path in cache_dir.glob(_TMP_PREFIX + '*'):
        try:
            if now - path.lstat().st_mtime > _STALE_SECONDS:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        except OSError:
            pass  # another process removed it first


def _sha1_of_utf8_text(path):
    """SHA-1 of a text file that must be UTF-8; a clear error if it is not,
    or if it cannot be read."""
    digest = hashlib.sha1(usedforsecurity=False)
    decoder = codecs.getincrementaldecoder('utf-8')()
    try:
        with open(path, 'rb') as file:
            while block := file.read(2**20):
                digest.update(block)
                decoder.decode(block)
            decoder.decode(b'', final=True)
    except UnicodeDecodeError:
        raise WikiText2Unavailable(not_utf8_message(path)) from None
    except OSError as error:
        raise WikiText2Unavailable(
            f'{path} を読めません (cannot read: {error})。ファイルの権限と'
            f'ディスクを確かめてください (check its permissions and the disk).'
        ) from None
    return digest.hexdigest()


def not_utf8_message(path):
    """Explain that the text file `path` is not UTF-8, and how to convert it.

    The encoding is guessed among those a Japanese reader's files often have.
    """
    data = Path(path).read_bytes()
    try:
        data.decode('utf-8')
        where = ''
    except UnicodeDecodeError as error:
        where = f': byte 0x{data[error.start]:02x} at offset {error.start}'
    guess = None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        guess = ('UTF-16', 'UTF-16')
    else:
        # EUC-JP first: Shift_JIS text rarely decodes as EUC-JP, while EUC-JP
        # text often decodes as Shift_JIS (as half-width katakana).
        for codec, name in (('euc_jp', 'EUC-JP'), ('cp932', 'Shift_JIS')):
            try:
                data.decode(codec)
                guess = (name, 'CP932' if codec == 'cp932' else name)
                break
            except UnicodeDecodeError:
                pass
    if guess is None:
        source = '元の文字コード (its encoding)'
        command_from = 'ENCODING'
    else:
        source = f'{guess[0]} のようです (looks like {guess[0]})'
        command_from = guess[1]
    name = Path(path).name
    return (
        f'{path} は UTF-8 ではありません (not UTF-8{where})。{source}。'
        f'UTF-8 に変換してください (convert it to UTF-8), 例 (e.g.): '
        f'iconv -f {command_from} -t UTF-8 {name} > {name}.utf8 && '
        f'mv {name}.utf8 {name}'
    )


_notice_shown = False


def _notice_if_not_official(train_sha1, official_sha1):
    """Say once per process when the training text is not the official one.

    The offline corpus of this project (validation + test concatenated) is
    such a file: anything computed on it differs from the official results.
    A calm line on stdout: Jupyter shows stderr as if it were an error.
    """
    global _notice_shown
    if _notice_shown or train_sha1 == official_sha1:
        return
    _notice_shown = True
    print(
        f'注意: この {TRAIN_FILE} は公式の WikiText-2 訓練データではないので、'
        '結果の数値は公式のものと異なります (note: this wiki.train.tokens is '
        'not the official training split, so numbers differ from the '
        'official ones).',
        flush=True,
    )


def _unavailable_message(attempts, cache_dir, archive_sha1):
    lines = [
        'WikiText-2 を用意できませんでした (could not obtain WikiText-2).',
        '試したソースと失敗の理由 (sources tried):',
    ]
    if not attempts:
        lines.append('  (なし: ミラーの一覧が空です / the mirror list is empty)')
    for source, reason in attempts:
        lines += [f'  - {source}', f'      {reason}']
    lines += [
        '手で用意するには、次のどれかを行ってください (to fix it by hand):',
        f'  1. ネットにつながる環境で {ARCHIVE_NAME} (SHA-1 {archive_sha1}) を'
        f'入手し (例: ブラウザで {DEFAULT_MIRRORS[0]})、',
        f'     {cache_dir / ARCHIVE_NAME} に置いてもう一度実行する (検証してから展開します)。',
        f'  2. zip を展開し、{TRAIN_FILE} のあるディレクトリ (展開してできる '
        f'{DATA_DIR_NAME}/) を環境変数 {DIR_ENV} に設定する。',
        f'     例 (e.g.): export {DIR_ENV}=/path/to/{DATA_DIR_NAME}',
        f"     ノートブックでは (in a notebook): os.environ['{DIR_ENV}'] = "
        f"'/path/to/{DATA_DIR_NAME}'",
        f'  3. 使えるミラーがあれば、その URL を空白区切りで環境変数 {MIRRORS_ENV} に設定する。',
        '     パスが / で終わる URL は、Hugging Face Hub と同じ配置の Parquet '
        'ディレクトリとみなします。',
    ]
    return '\n'.join(lines)


def _say(message):
    print(message, file=sys.stderr, flush=True)


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):  # one line and status 1, like any other failure
        self.exit(1, f'{self.prog}: {message}\n')


def main(argv=None):
    parser = _ArgumentParser(
        prog='python -m d2l_extras.wikitext2',
        description='WikiText-2 を用意し、そのディレクトリを表示する '
        '(fetch WikiText-2 and print its directory). '
        f'Environment: {DIR_ENV}, {MIRRORS_ENV}, {CACHE_ENV}.',
    )
    parser.add_argument(
        '--timeout',
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f'seconds per connection and read (default {DEFAULT_TIMEOUT:g})',
    )
    parser.add_argument(
        '--deadline',
        type=float,
        default=DEFAULT_DEADLINE,
        help=f'seconds for one whole download (default {DEFAULT_DEADLINE:g})',
    )
    args = parser.parse_args(argv)
    try:
        # stdout carries the directory only, so that $(...) can capture it
        with contextlib.redirect_stdout(sys.stderr):
            data_dir = wikitext2_dir(timeout=args.timeout, deadline=args.deadline)
    except KeyboardInterrupt:
        print('中断しました (interrupted)', file=sys.stderr)
        return 130
    except (WikiText2Unavailable, ValueError, TypeError) as error:
        print(error, file=sys.stderr)  # these messages explain themselves
        return 1
    except Exception as error:  # the promise: an explanation, no traceback
        print(
            f'WikiText-2 を用意できませんでした (could not obtain '
            f'WikiText-2): {type(error).__name__}: {error}',
            file=sys.stderr,
        )
        return 1
    print(data_dir)
    return 0


if __name__ == '__main__':
    sys.exit(main())
