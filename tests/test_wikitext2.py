"""Tests of d2l_extras.wikitext2 against a local HTTP server (no network).

The server on 127.0.0.1 plays the failures readers meet: 403 for Python's
default User-Agent, an HTML error page with status 200, a body cut short, an
archive with the wrong checksum, a stalled connection, a redirect.
"""

import errno
import hashlib
import http.server
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile

import pytest

from booktools.paths import DATA_DIR
from d2l_extras import wikitext2

TIMEOUT = 1.0  # seconds; the stalled mirror must hit it

# Small text in the format of the .tokens files (whitespace-only lines are
# " \n"). Different per split so that a mix-up would show.
FIXTURE_TEXTS = {
    'wiki.train.tokens': (
        ' \n = Fixture Article = \n \n'
        ' The quick brown fox jumps over the lazy dog . \n'
        ' \n = = Section = = \n \n'
        ' A second paragraph with <unk> tokens . \n \n'
    ),
    'wiki.valid.tokens': ' \n = Valid = \n \n Validation text . \n \n',
    'wiki.test.tokens': ' \n = Test = \n \n Test text . \n \n',
}
HTML_PAGE = (
    b'<!DOCTYPE html>\n<html><head><title>Access denied</title>'
    b'</head><body>Error 1020</body></html>\n'
)


def sha1_of(data):
    return hashlib.sha1(data).hexdigest()


def make_zip(members):
    """A zip (bytes) holding members: {name inside the zip: text}."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


GOOD_ZIP = make_zip({f'wikitext-2/{name}': text for name, text in FIXTURE_TEXTS.items()})
GOOD_SHA1S = {name: sha1_of(text.encode()) for name, text in FIXTURE_TEXTS.items()}
WRONG_ZIP = make_zip({f'wikitext-2/{name}': text.upper() for name, text in FIXTURE_TEXTS.items()})


# ---------------------------------------------------------------- the server


class MirrorHandler(http.server.BaseHTTPRequestHandler):
    """Answers each path with the behaviour registered in server.routes."""

    def do_GET(self):
        self.server.requests.append(self.path)
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404)
        else:
            route(self)

    def send_body(self, body, content_type='application/zip', status=200):
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass  # keep the test output clean


def good(handler):
    handler.send_body(GOOD_ZIP)


def refuse_python_user_agent(handler):
    # What wikitext.smerity.com does with urllib's default User-Agent.
    if handler.headers.get('User-Agent', '').startswith('Python-urllib'):
        handler.send_error(403)
    else:
        handler.send_body(GOOD_ZIP)


def forbidden(handler):
    handler.send_error(403)  # the original S3 URL since 2024


def html_page(handler):
    handler.send_body(HTML_PAGE, 'text/html; charset=utf-8')


def html_page_as_zip(handler):
    handler.send_body(HTML_PAGE, 'application/octet-stream')


def empty(handler):
    handler.send_body(b'')


def long_html_as_zip(handler):
    # A long error page: its first bytes must be enough to give up.
    handler.send_response(200)
    handler.send_header('Content-Type', 'application/octet-stream')
    handler.send_header('Content-Length', str(10**7))
    handler.end_headers()
    handler.wfile.write(HTML_PAGE)
    handler.wfile.flush()
    handler.server.release_stalled.wait(10)


def truncated(handler):
    handler.send_response(200)
    handler.send_header('Content-Type', 'application/zip')
    handler.send_header('Content-Length', str(len(GOOD_ZIP)))
    handler.end_headers()
    handler.wfile.write(GOOD_ZIP[: len(GOOD_ZIP) // 2])
    # HTTP/1.0: the connection closes when the handler returns


def wrong_checksum(handler):
    handler.send_body(WRONG_ZIP)


def stall(handler):
    handler.send_response(200)
    handler.send_header('Content-Type', 'application/zip')
    handler.send_header('Content-Length', str(len(GOOD_ZIP)))
    handler.end_headers()
    handler.wfile.write(GOOD_ZIP[:100])
    handler.wfile.flush()
    handler.server.release_stalled.wait(10)


def silent(handler):
    handler.server.release_stalled.wait(10)  # accepts, never answers


def trickle(handler):
    # A mirror that keeps the connection alive with a byte every 0.1 s.
    handler.send_response(200)
    handler.send_header('Content-Type', 'application/zip')
    handler.send_header('Content-Length', str(len(GOOD_ZIP)))
    handler.end_headers()
    for byte in GOOD_ZIP:
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        if handler.server.release_stalled.wait(0.1):
            return


def trickle_headers(handler):
    # A mirror that sends its status line and headers a byte every 0.1 s: each read
    # returns before the timeout, so only the overall deadline stops the client.
    head = (
        'HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\n'
        f'Content-Length: {len(GOOD_ZIP)}\r\n' + 'X-Padding: ' + 'x' * 300 + '\r\n\r\n'
    ).encode()
    for byte in head:
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        if handler.server.release_stalled.wait(0.1):
            return


def redirect(handler):
    handler.send_response(302)
    handler.send_header('Location', '/good/wikitext-2-v1.zip')
    handler.send_header('Content-Length', '0')
    handler.end_headers()


class MirrorServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that time out reset connections; that is expected


ROUTES = {
    '/good/wikitext-2-v1.zip': good,
    '/ua/wikitext-2-v1.zip': refuse_python_user_agent,
    '/forbidden/wikitext-2-v1.zip': forbidden,
    '/html/wikitext-2-v1.zip': html_page,
    '/html-as-zip/wikitext-2-v1.zip': html_page_as_zip,
    '/empty/wikitext-2-v1.zip': empty,
    '/long-html-as-zip/wikitext-2-v1.zip': long_html_as_zip,
    '/truncated/wikitext-2-v1.zip': truncated,
    '/wrong/wikitext-2-v1.zip': wrong_checksum,
    '/stall/wikitext-2-v1.zip': stall,
    '/silent/wikitext-2-v1.zip': silent,
    '/redirect/wikitext-2-v1.zip': redirect,
    '/trickle/wikitext-2-v1.zip': trickle,
    '/trickle-headers/wikitext-2-v1.zip': trickle_headers,
}


@pytest.fixture(scope='module')
def server():
    mirror_server = MirrorServer(('127.0.0.1', 0), MirrorHandler)
    mirror_server.routes = dict(ROUTES)
    mirror_server.requests = []
    mirror_server.release_stalled = threading.Event()
    thread = threading.Thread(target=mirror_server.serve_forever, daemon=True)
    thread.start()
    yield mirror_server
    mirror_server.release_stalled.set()
    mirror_server.shutdown()
    mirror_server.server_close()


@pytest.fixture
def mirror(server):
    """mirror('good') -> URL of that route; also resets the request log."""
    server.requests.clear()
    host, port = server.server_address
    return lambda name: f'http://{host}:{port}/{name}/wikitext-2-v1.zip'


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    for name in (wikitext2.DIR_ENV, wikitext2.MIRRORS_ENV):
        monkeypatch.delenv(name, raising=False)
    # A call that forgets cache_dir must not touch the real ~/.cache.
    monkeypatch.setenv(wikitext2.CACHE_ENV, str(tmp_path / 'default-cache'))
    monkeypatch.setenv('no_proxy', '127.0.0.1,localhost')
    monkeypatch.setenv('NO_PROXY', '127.0.0.1,localhost')
    monkeypatch.setattr(wikitext2, '_notice_shown', False, raising=False)


@pytest.fixture
def cache(tmp_path):
    return tmp_path / 'cache'


def fetch(mirrors, cache_dir, **kwargs):
    options = dict(archive_sha1=sha1_of(GOOD_ZIP), member_sha1s=GOOD_SHA1S, timeout=TIMEOUT)
    options.update(kwargs)
    return wikitext2.wikitext2_dir(mirrors=mirrors, cache_dir=cache_dir, **options)


def contents(directory):
    """Every path under directory, relative, sorted."""
    if not directory.exists():
        return []
    return sorted(str(path.relative_to(directory)) for path in directory.rglob('*'))


VERIFIED_CACHE = [
    'wikitext-2',
    'wikitext-2-v1.zip',
    'wikitext-2/wiki.test.tokens',
    'wikitext-2/wiki.train.tokens',
    'wikitext-2/wiki.valid.tokens',
]


def assert_fixture_data(data_dir):
    for name, text in FIXTURE_TEXTS.items():
        assert (data_dir / name).read_bytes() == text.encode()


def unused_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


# ----------------------------------------------------------------- downloads


def test_browser_user_agent_gets_past_the_403(mirror, cache):
    url = mirror('ua')
    with pytest.raises(urllib.error.HTTPError) as plain:  # the server is picky
        urllib.request.urlopen(url, timeout=TIMEOUT)
    plain.value.close()
    assert plain.value.code == 403
    data_dir = fetch([url], cache)
    assert data_dir == cache.absolute() / 'wikitext-2'
    assert_fixture_data(data_dir)
    assert contents(cache) == VERIFIED_CACHE


FAILURES = [
    ('forbidden', 'HTTP 403'),
    ('html', 'got an HTML page'),
    ('html-as-zip', 'not a zip'),
    ('empty', 'not a zip'),
    ('long-html-as-zip', 'not a zip'),
    ('truncated', 'truncated'),
    ('wrong', f'checksum mismatch: got {sha1_of(WRONG_ZIP)}'),
    pytest.param('stall', 'timeout after 1 s', marks=pytest.mark.slow),
    pytest.param('silent', 'timeout after 1 s', marks=pytest.mark.slow),
    ('missing', 'HTTP 404'),
]


@pytest.mark.parametrize(
    'route, reason', FAILURES, ids=[getattr(f, 'values', f)[0] for f in FAILURES]
)
def test_a_failing_mirror_leaves_nothing_in_the_cache(mirror, cache, route, reason):
    url = mirror(route)
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch([url], cache)
    [(source, got_reason)] = failure.value.attempts
    assert source == url
    assert reason in got_reason
    assert url in str(failure.value) and got_reason in str(failure.value)
    assert contents(cache) == []


def test_same_members_in_another_archive_are_refused(server, mirror, cache):
    # The published SHA-1 pins the archive itself, not only what it holds.
    stored_zip = io.BytesIO()
    with zipfile.ZipFile(stored_zip, 'w', zipfile.ZIP_STORED) as archive:
        for name, text in FIXTURE_TEXTS.items():
            archive.writestr(f'wikitext-2/{name}', text)
    body = stored_zip.getvalue()
    server.routes['/repacked/wikitext-2-v1.zip'] = lambda handler: handler.send_body(body)
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch([mirror('repacked')], cache)
    assert f'got {sha1_of(body)}' in failure.value.attempts[0][1]
    assert contents(cache) == []


def test_connect_timeout_is_reported_as_a_timeout():
    # urllib wraps a timeout while connecting in URLError; a read timeout
    # arrives bare (the stalled mirrors above).
    wrapped = urllib.error.URLError(TimeoutError('timed out'))
    assert wikitext2._reason(wrapped, 2) == wikitext2._reason(TimeoutError('timed out'), 2)
    assert 'timeout after 2 s' in wikitext2._reason(wrapped, 2)


def test_refused_connection_is_reported(cache):
    url = f'http://127.0.0.1:{unused_port()}/wikitext-2-v1.zip'
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch([url], cache)
    assert 'connection failed' in failure.value.attempts[0][1]
    assert contents(cache) == []


@pytest.mark.slow  # waits on the clock (timeouts, deadlines): the full tier, not `make unit`
def test_failing_mirrors_then_a_good_one_last(server, mirror, cache):
    failing = [getattr(f, 'values', f)[0] for f in FAILURES]
    data_dir = fetch([mirror(route) for route in failing + ['good']], cache)
    assert_fixture_data(data_dir)
    assert contents(cache) == VERIFIED_CACHE
    assert sha1_of((cache / 'wikitext-2-v1.zip').read_bytes()) == sha1_of(GOOD_ZIP)
    assert [path.split('/')[1] for path in server.requests] == failing + ['good']


def test_redirect_is_followed(server, mirror, cache):
    assert_fixture_data(fetch([mirror('redirect')], cache))
    assert server.requests == ['/redirect/wikitext-2-v1.zip', '/good/wikitext-2-v1.zip']


def test_file_url_mirror(tmp_path, cache):
    archive = tmp_path / 'usb' / 'wikitext-2-v1.zip'
    archive.parent.mkdir()
    archive.write_bytes(GOOD_ZIP)
    assert_fixture_data(fetch([archive.as_uri()], cache))


def test_all_mirrors_failing_lists_each_url_reason_and_what_to_do(mirror, cache):
    urls = [mirror('forbidden'), mirror('html'), mirror('wrong')]
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch(urls, cache)
    message = str(failure.value)
    assert [source for source, _ in failure.value.attempts] == urls
    for url, reason in zip(urls, ['HTTP 403', 'HTML page', 'checksum mismatch']):
        line = message.index(url)
        assert reason in message[line:].splitlines()[1]  # reason under URL
    assert wikitext2.DIR_ENV in message
    assert wikitext2.MIRRORS_ENV in message
    assert str(cache.absolute() / 'wikitext-2-v1.zip') in message
    assert sha1_of(GOOD_ZIP) in message


def test_mirrors_environment_variable_replaces_the_list(monkeypatch, mirror, cache):
    urls = [mirror('forbidden'), mirror('missing')]
    monkeypatch.setenv(wikitext2.MIRRORS_ENV, '  '.join(urls))
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch(None, cache)
    assert [source for source, _ in failure.value.attempts] == urls


def test_interrupted_download_leaves_nothing(monkeypatch, mirror, cache):
    def interrupt(self, received):
        raise KeyboardInterrupt  # as if Ctrl-C arrived mid-download

    monkeypatch.setattr(wikitext2._Progress, 'update', interrupt)
    with pytest.raises(KeyboardInterrupt):
        fetch([mirror('good')], cache)
    assert contents(cache) == []


def test_too_large_download_is_refused(monkeypatch, mirror, cache):
    monkeypatch.setattr(wikitext2, '_MAX_BYTES', 100)
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch([mirror('good')], cache)
    assert 'too large' in failure.value.attempts[0][1]
    assert contents(cache) == []


def test_progress_is_shown_for_long_downloads(monkeypatch, capsys, mirror, cache):
    monkeypatch.setattr(wikitext2, '_PROGRESS_MIN_BYTES', 1)
    fetch([mirror('good')], cache)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert 'downloading' in lines[0] and mirror('good') in lines[0]
    assert 'finished' in lines[1]


def test_short_download_prints_nothing(capsys, mirror, cache):
    fetch([mirror('good')], cache)
    assert capsys.readouterr() == ('', '')


@pytest.mark.parametrize('member', ['../../evil.txt', '/tmp/evil.txt'])
def test_archive_with_a_path_outside_the_target_is_rejected(
    server, mirror, tmp_path, cache, member
):
    members = {f'wikitext-2/{name}': text for name, text in FIXTURE_TEXTS.items()}
    members[member] = 'escaped'
    evil_zip = make_zip(members)
    server.routes['/evil/wikitext-2-v1.zip'] = lambda handler: handler.send_body(evil_zip)
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch([mirror('evil')], cache, archive_sha1=sha1_of(evil_zip))
    assert 'unsafe path' in failure.value.attempts[0][1]
    assert member in failure.value.attempts[0][1]
    assert contents(cache) == []
    assert not (tmp_path / 'evil.txt').exists()


def test_archive_without_the_expected_members_is_rejected(server, mirror, cache):
    flat_zip = make_zip(FIXTURE_TEXTS)  # members not under wikitext-2/
    server.routes['/flat/wikitext-2-v1.zip'] = lambda handler: handler.send_body(flat_zip)
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch([mirror('flat')], cache, archive_sha1=sha1_of(flat_zip))
    assert 'missing wikitext-2/wiki.' in failure.value.attempts[0][1]
    assert contents(cache) == []


# --------------------------------------------------------------------- cache


def test_verified_cache_is_used_without_network(server, mirror, cache):
    fetch([mirror('good')], cache)
    server.requests.clear()
    assert_fixture_data(fetch([mirror('forbidden')], cache))
    # Verified files suffice without the archive (as after the Hub source).
    (cache / 'wikitext-2-v1.zip').unlink()
    assert_fixture_data(fetch([mirror('forbidden')], cache))
    assert server.requests == []


def test_corrupt_cached_archive_is_fetched_again(mirror, cache):
    # d2l-en #2588: an HTML error page had been saved under the zip's name.
    cache.mkdir()
    (cache / 'wikitext-2-v1.zip').write_bytes(HTML_PAGE)
    assert_fixture_data(fetch([mirror('good')], cache))
    assert contents(cache) == VERIFIED_CACHE
    assert (cache / 'wikitext-2-v1.zip').read_bytes() == GOOD_ZIP


def test_corrupt_cached_archive_is_removed_even_if_mirrors_fail(mirror, cache):
    cache.mkdir()
    (cache / 'wikitext-2-v1.zip').write_bytes(HTML_PAGE)
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch([mirror('forbidden')], cache)
    cache_source, cache_reason = failure.value.attempts[0]
    assert str(cache.absolute() / 'wikitext-2-v1.zip') in cache_source
    assert 'checksum mismatch' in cache_reason
    assert 'discarded' in cache_reason
    assert contents(cache) == []


def test_damaged_extracted_file_is_restored_from_the_cached_archive(server, mirror, cache):
    data_dir = fetch([mirror('good')], cache)
    (data_dir / 'wiki.train.tokens').write_text('damaged')
    server.requests.clear()
    assert_fixture_data(fetch([], cache))
    assert server.requests == []
    # Replacing a damaged directory is serialized by a lock file.
    assert contents(cache) == sorted(VERIFIED_CACHE + ['.d2l-install.lock'])


def test_stale_temporaries_are_removed_fresh_ones_kept(mirror, cache):
    cache.mkdir()
    stale = cache / '.d2l-tmp-download-old.part'
    stale.write_bytes(GOOD_ZIP[:10])
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    fresh = cache / '.d2l-tmp-download-running.part'  # another process's
    fresh.write_bytes(GOOD_ZIP[:10])
    fetch([mirror('good')], cache)
    assert not stale.exists()
    assert fresh.exists()


def test_default_cache_dir_comes_from_the_environment(monkeypatch, tmp_path, mirror):
    monkeypatch.setenv(wikitext2.CACHE_ENV, str(tmp_path / 'elsewhere'))
    data_dir = fetch([mirror('good')], None)
    assert data_dir == tmp_path / 'elsewhere' / 'wikitext-2'


# ------------------------------------------------ D2L_WIKITEXT2_DIR, notice


def write_data_dir(directory, texts=FIXTURE_TEXTS):
    directory.mkdir(parents=True)
    for name, text in texts.items():
        (directory / name).write_text(text)
    return directory


def test_dir_environment_variable_wins(monkeypatch, server, mirror, tmp_path):
    data_dir = write_data_dir(tmp_path / 'data')
    monkeypatch.setenv(wikitext2.DIR_ENV, str(data_dir))
    assert fetch([mirror('good')], tmp_path / 'cache') == data_dir
    assert server.requests == []
    assert not (tmp_path / 'cache').exists()


@pytest.mark.parametrize('make_dir', [True, False])
def test_dir_environment_variable_without_the_file(monkeypatch, tmp_path, make_dir):
    given = tmp_path / 'data'
    if make_dir:
        given.mkdir()
        (given / 'wiki.valid.tokens').write_text('only valid')
    monkeypatch.setenv(wikitext2.DIR_ENV, str(given))
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch([], tmp_path / 'cache')
    message = str(failure.value)
    assert wikitext2.DIR_ENV in message
    assert str(given) in message
    assert ('no wiki.train.tokens' if make_dir else 'no such directory') in message


def test_dir_environment_variable_on_the_parent_gets_a_hint(monkeypatch, tmp_path):
    write_data_dir(tmp_path / 'data' / 'wikitext-2')
    monkeypatch.setenv(wikitext2.DIR_ENV, str(tmp_path / 'data'))
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch([], tmp_path / 'cache')
    assert f'did you mean {tmp_path / "data" / "wikitext-2"}' in str(failure.value)


def test_notice_for_a_training_file_that_is_not_official(monkeypatch, capsys, tmp_path):
    data_dir = write_data_dir(tmp_path / 'data')
    other_dir = write_data_dir(tmp_path / 'other')
    monkeypatch.setenv(wikitext2.DIR_ENV, str(data_dir))
    wikitext2.wikitext2_dir()  # official checksums: the fixture is not
    wikitext2.wikitext2_dir()  # once per process is enough
    monkeypatch.setenv(wikitext2.DIR_ENV, str(other_dir))
    wikitext2.wikitext2_dir()
    out, err = capsys.readouterr()
    assert err == ''  # Jupyter shows stderr in an error box
    lines = out.splitlines()
    assert len(lines) == 1
    assert 'wiki.train.tokens is not the official training split' in lines[0]
    assert str(tmp_path) not in lines[0] and '/' not in lines[0]


def test_no_notice_when_the_training_file_matches(monkeypatch, capsys, tmp_path):
    data_dir = write_data_dir(tmp_path / 'data')
    monkeypatch.setenv(wikitext2.DIR_ENV, str(data_dir))
    wikitext2.wikitext2_dir(member_sha1s=GOOD_SHA1S)
    assert capsys.readouterr().err == ''


# ------------------------------------------- Hugging Face Hub Parquet files


def hub_rows(text):
    """The Hub's `text` column: one row per line, blank lines as ''."""
    return [line if line.strip() else '' for line in text.splitlines(keepends=True)]


def test_tokens_text_from_rows_rebuilds_the_file():
    for text in FIXTURE_TEXTS.values():
        assert wikitext2.tokens_text_from_rows(hub_rows(text)) == text


def shared_split(name):
    return DATA_DIR / 'wikitext-2' / name


@pytest.mark.parametrize('name', ['wiki.valid.tokens', 'wiki.test.tokens'])
def test_the_repository_carries_the_published_splits(name):
    import hashlib

    data = shared_split(name).read_bytes()
    assert sha1_of(data) == wikitext2.MEMBER_SHA1S[name]  # as the published zip lists them
    sums = (DATA_DIR / 'wikitext-2' / 'SHA256SUMS').read_text().split()
    assert dict(zip(sums[1::2], sums[::2]))[name] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize('name', ['wiki.valid.tokens', 'wiki.test.tokens'])
def test_rebuild_rule_reproduces_the_official_checksum(name):
    text = shared_split(name).read_bytes().decode('utf-8')
    rebuilt = wikitext2.tokens_text_from_rows(hub_rows(text))
    assert sha1_of(rebuilt.encode('utf-8')) == wikitext2.MEMBER_SHA1S[name]


def hub_url(server):
    host, port = server.server_address
    return f'http://{host}:{port}/hub/wikitext-2-v1/'


def parquet_reader_or_skip():
    try:
        return wikitext2._parquet_engine()
    except wikitext2._SourceFailed as missing:
        pytest.skip(str(missing))


def test_hub_parquet_source_rebuilds_the_tokens_files(server, mirror, cache):
    if parquet_reader_or_skip() != 'pyarrow':
        pytest.skip('writing the fixture Parquet files needs pyarrow')
    import pyarrow
    import pyarrow.parquet

    for parquet_name, tokens_name in wikitext2.PARQUET_FILES.items():
        buffer = io.BytesIO()
        table = pyarrow.table({'text': hub_rows(FIXTURE_TEXTS[tokens_name])})
        pyarrow.parquet.write_table(table, buffer)
        body = buffer.getvalue()
        server.routes[f'/hub/wikitext-2-v1/{parquet_name}'] = lambda handler, body=body: (
            handler.send_body(body, 'application/octet-stream')
        )
    data_dir = fetch([mirror('forbidden'), hub_url(server)], cache)
    assert_fixture_data(data_dir)
    assert contents(cache) == [path for path in VERIFIED_CACHE if path != 'wikitext-2-v1.zip']


def test_hub_source_with_an_html_page_leaves_nothing(server, cache):
    server.requests.clear()
    server.routes['/hub/broken/train-00000-of-00001.parquet'] = html_page
    host, port = server.server_address
    url = f'http://{host}:{port}/hub/broken/'
    parquet_reader_or_skip()
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch([url], cache)
    reason = failure.value.attempts[0][1]
    assert 'train-00000-of-00001.parquet' in reason and 'HTML' in reason
    assert contents(cache) == []


def test_hub_source_is_skipped_without_a_parquet_reader(monkeypatch, server, cache):
    for module in ('pyarrow', 'pyarrow.parquet', 'fastparquet'):
        monkeypatch.setitem(sys.modules, module, None)  # import fails
    server.requests.clear()
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch([hub_url(server)], cache)
    assert 'pip install pyarrow' in failure.value.attempts[0][1]
    assert server.requests == []
    assert contents(cache) == []


def test_default_mirrors_try_smerity_then_hub_then_s3():
    mirrors = wikitext2.DEFAULT_MIRRORS
    assert 'wikitext.smerity.com' in mirrors[0]
    assert mirrors[1].startswith('https://huggingface.co/datasets/Salesforce/wikitext/')
    assert mirrors[1].endswith('/')  # a Parquet directory
    assert 's3.amazonaws.com' in mirrors[-1]


# ----------------------------------------------------------------------- CLI


def run_cli(env_updates):
    env = {key: value for key, value in os.environ.items() if key != wikitext2.DIR_ENV}
    env.update(env_updates)
    return subprocess.run(
        [sys.executable, '-m', 'd2l_extras.wikitext2', '--timeout', '5'],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_failure_prints_only_the_message(monkeypatch, mirror, tmp_path):
    settings = {
        wikitext2.MIRRORS_ENV: mirror('forbidden'),
        wikitext2.CACHE_ENV: str(tmp_path / 'cache'),
    }
    result = run_cli(settings)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        wikitext2.wikitext2_dir(timeout=5)
    assert result.returncode == 1
    assert result.stdout == ''
    assert result.stderr == str(failure.value) + '\n'
    assert 'Traceback' not in result.stderr


def test_cli_prints_the_directory(tmp_path):
    data_dir = write_data_dir(tmp_path / 'data')
    result = run_cli({wikitext2.DIR_ENV: str(data_dir)})
    assert result.returncode == 0
    assert result.stdout == f'{data_dir}\n'
    assert 'not the official' in result.stderr  # the fixture is not


# ------------------------------------------- faults that are not the data's
#
# Mounting needs root with CAP_SYS_ADMIN (as in this project's containers);
# elsewhere the same failure is injected, and the *_tmpfs variants skip.


def mount(*args):
    try:
        return (
            subprocess.run(['mount', *map(str, args)], capture_output=True, timeout=10).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture
def mounts():
    """mounts(directory, *mount arguments) -> whether it worked; every mount
    is undone at the end of the test."""
    mounted = []

    def mount_here(directory, *args):
        directory.mkdir(parents=True, exist_ok=True)
        if not mount(*args, directory):
            return False
        mounted.append(directory)
        return True

    yield mount_here
    for directory in reversed(mounted):
        subprocess.run(['umount', '-l', str(directory)], timeout=10)


def small_tmpfs(mounts, directory):
    if not mounts(directory, '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs'):
        pytest.skip('cannot mount a tmpfs here (needs CAP_SYS_ADMIN)')


def fill_up(directory):
    """Use up the free space of the (small) file system of directory."""
    with open(directory / 'filler', 'wb', buffering=0) as filler:
        with pytest.raises(OSError) as full:
            for _ in range(10**4):  # bounded: 64 KiB take 16 writes
                filler.write(b'x' * 4096)
    assert full.value.errno == errno.ENOSPC


@pytest.mark.parametrize('fault', ['tmpfs', 'injected'])
def test_full_disk_while_extracting_keeps_the_verified_archive(
    monkeypatch, mounts, tmp_path, fault
):
    disk = tmp_path / 'disk'
    cache = disk / 'cache'
    if fault == 'tmpfs':
        small_tmpfs(mounts, disk)
        cache.mkdir()
        (cache / 'wikitext-2-v1.zip').write_bytes(GOOD_ZIP)  # the teacher's copy
        fill_up(disk)
    else:
        cache.mkdir(parents=True)
        (cache / 'wikitext-2-v1.zip').write_bytes(GOOD_ZIP)

        def no_space(*args, **kwargs):
            raise OSError(errno.ENOSPC, 'No space left on device')

        monkeypatch.setattr(zipfile.ZipFile, 'extractall', no_space)
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch([], cache)
    message = str(failure.value)
    assert 'No space left on device' in message
    assert 'the verified archive was kept' in message
    assert wikitext2.CACHE_ENV in message and 'free some disk space' in message
    assert (cache / 'wikitext-2-v1.zip').read_bytes() == GOOD_ZIP
    assert contents(cache) == ['wikitext-2-v1.zip']  # no half-extracted data


def test_full_disk_while_downloading_says_what_to_do(mounts, tmp_path, mirror, capsys, monkeypatch):
    monkeypatch.setattr(wikitext2, '_PROGRESS_MIN_BYTES', 1)
    small_tmpfs(mounts, tmp_path / 'disk')
    fill_up(tmp_path / 'disk')
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch([mirror('good'), mirror('good')], tmp_path / 'disk' / 'cache')
    message = str(failure.value)
    assert 'No space left on device' in message
    assert 'free some disk space' in message
    assert 'finished' not in capsys.readouterr().err


def test_cached_archive_that_is_a_directory_is_left_alone(mirror, cache):
    (cache / 'wikitext-2-v1.zip').mkdir(parents=True)
    (cache / 'wikitext-2-v1.zip' / 'notes.txt').write_text('mine')
    assert_fixture_data(fetch([mirror('good')], cache))
    assert (cache / 'wikitext-2-v1.zip' / 'notes.txt').read_text() == 'mine'


def test_cached_archive_with_an_unrelated_error_is_not_deleted(mirror, cache):
    # Its checksum verifies, but the members do not (wrong member SHA-1s).
    cache.mkdir()
    (cache / 'wikitext-2-v1.zip').write_bytes(GOOD_ZIP)
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch(
            [mirror('forbidden')],
            cache,
            member_sha1s=dict(GOOD_SHA1S, **{'wiki.train.tokens': '0' * 40}),
        )
    assert 'left in place' in failure.value.attempts[0][1]
    assert (cache / 'wikitext-2-v1.zip').read_bytes() == GOOD_ZIP


@pytest.mark.parametrize('how', ['bind-ro', 'injected'])
def test_verified_read_only_cache_is_used(monkeypatch, mounts, mirror, server, cache, how):
    fetch([mirror('good')], cache)
    if how == 'bind-ro':  # root ignores chmod; a read-only mount stops it
        if not (mounts(cache, '--bind', cache) and mount('-o', 'remount,bind,ro', cache)):
            pytest.skip('cannot make a read-only bind mount here')
        with pytest.raises(OSError):
            (cache / 'probe').write_text('x')
    else:
        real_access = os.access
        monkeypatch.setattr(
            wikitext2.os,
            'access',
            lambda path, mode: False if mode & os.W_OK else real_access(path, mode),
        )
    server.requests.clear()
    assert_fixture_data(fetch([mirror('good')], cache))
    assert server.requests == []


def test_read_only_cache_without_data_says_so(monkeypatch, mirror, cache):
    monkeypatch.setattr(wikitext2.os, 'access', lambda path, mode: False)
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch([mirror('good')], cache)
    assert wikitext2.CACHE_ENV in str(failure.value)


RACE_SCRIPT = r"""
import json, multiprocessing, sys, traceback
from pathlib import Path
from d2l_extras import wikitext2

root, url, sha1s_json, rounds, workers = sys.argv[1:]
sha1s = json.loads(sha1s_json)
barrier = multiprocessing.get_context('fork').Barrier(int(workers))

archive_sha1 = sha1s.pop('archive')

def work(_):
    failures = []
    for r in range(int(rounds)):
        barrier.wait(timeout=20)  # all start the round at the same moment
        try:
            data_dir = wikitext2.wikitext2_dir(
                mirrors=[url], cache_dir=Path(root) / f'round-{r}',
                archive_sha1=archive_sha1, member_sha1s=sha1s, timeout=5)
            for name in sha1s:
                (data_dir / name).read_bytes()
        except Exception:
            failures.append(f'round {r}: ' + traceback.format_exc(limit=-1))
    return failures

with multiprocessing.get_context('fork').Pool(int(workers)) as pool:
    failures = sum(pool.map(work, range(int(workers))), [])
print(f'{len(failures)} failures', *failures[:3], sep='\n')
sys.exit(1 if failures else 0)
"""


@pytest.mark.slow  # waits on the clock (timeouts, deadlines): the full tier, not `make unit`
def test_processes_filling_one_cache_at_once_all_succeed(tmp_path):
    # A classroom on a shared home directory: 4 processes, 50 rounds, each
    # round a fresh cache that all of them fill at the same moment.
    archive = tmp_path / 'wikitext-2-v1.zip'
    archive.write_bytes(GOOD_ZIP)
    sha1s = dict(GOOD_SHA1S, archive=sha1_of(GOOD_ZIP))
    env = dict(os.environ)
    env.pop(wikitext2.DIR_ENV, None)
    result = subprocess.run(
        [
            sys.executable,
            '-c',
            RACE_SCRIPT,
            str(tmp_path / 'caches'),
            archive.as_uri(),
            json.dumps(sha1s),
            '50',
            '4',
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow  # waits on the clock (timeouts, deadlines): the full tier, not `make unit`
def test_trickling_mirror_is_given_up_at_the_deadline(monkeypatch, capsys, mirror, cache):
    monkeypatch.setattr(wikitext2, '_PROGRESS_AFTER_SECONDS', 0.3)
    started = time.monotonic()
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch([mirror('trickle')], cache, deadline=1.5)
    assert time.monotonic() - started < 10  # the server would go on for 70 s
    assert 'deadline' in failure.value.attempts[0][1]
    assert contents(cache) == []
    err = capsys.readouterr().err  # a slow transfer shows progress, any size
    assert 'downloading' in err and mirror('trickle') in err
    assert 'finished' not in err


@pytest.mark.slow  # waits on the clock (timeouts, deadlines): the full tier, not `make unit`
def test_mirror_trickling_its_headers_is_given_up_at_the_deadline(mirror, cache):
    started = time.monotonic()
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch([mirror('trickle-headers')], cache, timeout=2, deadline=1)
    assert time.monotonic() - started < 5  # the headers alone would take 35 s
    assert 'deadline' in failure.value.attempts[0][1]
    assert contents(cache) == []


def test_interrupted_download_does_not_say_finished(monkeypatch, capsys, mirror, cache):
    monkeypatch.setattr(wikitext2, '_PROGRESS_MIN_BYTES', 1)
    real_update = wikitext2._Progress.update

    def interrupt(self, received):
        real_update(self, received)
        raise KeyboardInterrupt

    monkeypatch.setattr(wikitext2._Progress, 'update', interrupt)
    with pytest.raises(KeyboardInterrupt):
        fetch([mirror('good')], cache)
    err = capsys.readouterr().err
    assert 'downloading' in err and 'finished' not in err


# ------------------------------------------------ files that are not right


def write_hub_parquet(directory, column):
    """The Hub's Parquet files under directory; column(tokens name) -> rows."""
    if parquet_reader_or_skip() != 'pyarrow':
        pytest.skip('writing the fixture Parquet files needs pyarrow')
    import pyarrow
    import pyarrow.parquet

    directory.mkdir(parents=True)
    for parquet_name, tokens_name in wikitext2.PARQUET_FILES.items():
        pyarrow.parquet.write_table(
            pyarrow.table({'text': column(tokens_name)}), directory / parquet_name
        )


def test_file_url_parquet_mirror(tmp_path, cache):
    hub = tmp_path / 'usb stick' / 'wikitext-2-v1'
    write_hub_parquet(hub, lambda name: hub_rows(FIXTURE_TEXTS[name]))
    assert_fixture_data(fetch([hub.as_uri() + '/'], cache))


def test_parquet_with_a_text_column_of_numbers_is_explained(tmp_path, cache):
    hub = tmp_path / 'hub'
    write_hub_parquet(hub, lambda name: list(range(3)))
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch([hub.as_uri() + '/'], cache)
    assert "column 'text' holds int" in failure.value.attempts[0][1]


JAPANESE = ' \n = 日本語の記事 = \n \n 吾輩 は 猫 で ある 。 \n'


@pytest.mark.parametrize(
    'codec, named', [('cp932', 'Shift_JIS'), ('euc_jp', 'EUC-JP'), ('utf-16', 'UTF-16')]
)
def test_corpus_that_is_not_utf8_says_which_file_and_encoding(monkeypatch, tmp_path, codec, named):
    data_dir = write_data_dir(tmp_path / 'data')
    (data_dir / 'wiki.train.tokens').write_bytes(JAPANESE.encode(codec))
    monkeypatch.setenv(wikitext2.DIR_ENV, str(data_dir))
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch([], tmp_path / 'cache')
    message = str(failure.value)
    assert str(data_dir / 'wiki.train.tokens') in message
    assert 'not UTF-8' in message and named in message
    assert 'iconv -f' in message


@pytest.mark.parametrize(
    'target, expected',
    [
        ('wiki.train.tokens', 'this is the file itself'),
        ('wikitext-2-v1.zip', 'a zip: extract it'),
        ('notes.txt', 'a file, not a directory'),
    ],
)
def test_dir_variable_on_a_file_says_what_was_expected(monkeypatch, tmp_path, target, expected):
    data_dir = write_data_dir(tmp_path / 'data')
    (data_dir / 'wikitext-2-v1.zip').write_bytes(GOOD_ZIP)
    (data_dir / 'notes.txt').write_text("a teacher's notes")
    monkeypatch.setenv(wikitext2.DIR_ENV, str(data_dir / target))
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch([], tmp_path / 'cache')
    assert expected in str(failure.value)
    assert 'no such directory' not in str(failure.value)


@pytest.mark.parametrize(
    'mirrors, hint',
    [
        ('/srv/wikitext-2-v1.zip', 'file:///srv/wikitext-2-v1.zip'),
        (r'C:\data\wikitext-2-v1.zip', 'a Windows path'),
        (
            'file:///media/usb stick/wikitext-2-v1.zip',
            'file:///media/usb%20stick/wikitext-2-v1.zip',
        ),
    ],
)
def test_mirror_list_entry_that_is_not_a_url(monkeypatch, cache, mirrors, hint):
    monkeypatch.setenv(wikitext2.MIRRORS_ENV, mirrors)
    with pytest.raises(wikitext2.WikiText2Unavailable) as failure:
        fetch(None, cache)
    assert hint in str(failure.value)
    assert wikitext2.MIRRORS_ENV in str(failure.value)


def run_cli_args(args, env_updates):
    env = {key: value for key, value in os.environ.items() if key != wikitext2.DIR_ENV}
    env.update(env_updates)
    return subprocess.run(
        [sys.executable, '-m', 'd2l_extras.wikitext2', *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    'case',
    [
        'timeout-inf',
        'timeout-word',
        'not-utf8',
        'plain-path-mirror',
        pytest.param('deadline', marks=pytest.mark.slow),
    ],
)
def test_cli_prints_one_explanation_and_exits_1(mirror, tmp_path, case):
    settings = {
        wikitext2.CACHE_ENV: str(tmp_path / 'cache'),
        wikitext2.MIRRORS_ENV: mirror('forbidden'),
    }
    args = []
    if case == 'timeout-inf':
        args, expected = ['--timeout', 'inf'], 'timeout'
    elif case == 'timeout-word':
        args, expected = ['--timeout', 'long'], '--timeout'
    elif case == 'not-utf8':
        data_dir = write_data_dir(tmp_path / 'data')
        (data_dir / 'wiki.train.tokens').write_bytes(JAPANESE.encode('cp932'))
        settings[wikitext2.DIR_ENV] = str(data_dir)
        expected = 'Shift_JIS'
    elif case == 'plain-path-mirror':
        settings[wikitext2.MIRRORS_ENV] = str(tmp_path / 'wikitext-2-v1.zip')
        expected = (tmp_path / 'wikitext-2-v1.zip').as_uri()
    else:
        settings[wikitext2.MIRRORS_ENV] = mirror('trickle')
        args, expected = ['--timeout', '2', '--deadline', '1'], 'deadline'
    result = run_cli_args(args, settings)
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    assert expected in result.stderr
    assert result.stdout == ''


@pytest.mark.parametrize(
    'raised, code, expected',
    [
        (KeyboardInterrupt(), 130, '中断しました (interrupted)'),
        (RuntimeError('the disk went away'), 1, 'RuntimeError: the disk went away'),
    ],
    ids=['ctrl-c', 'unexpected'],
)
def test_cli_on_ctrl_c_or_an_unexpected_error(monkeypatch, capsys, raised, code, expected):
    def fail(**kwargs):
        raise raised

    monkeypatch.setattr(wikitext2, 'wikitext2_dir', fail)
    assert wikitext2.main([]) == code
    out, err = capsys.readouterr()
    assert out == '' and expected in err
    assert 'Traceback' not in err and 'finished' not in err
