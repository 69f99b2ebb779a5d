"""The built HTML book in a real browser (headless Chromium from Debian, no download).

The site in _build/html (`make book` builds it; BOOK_HTML_DIR points elsewhere) is served
from 127.0.0.1 on a free port. Every page load records JavaScript errors and any request
that would leave this machine (the book must work offline); both fail the test that made them.
"""

import json
import os
import pathlib
import re
import subprocess
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest

pytestmark = pytest.mark.browser

ROOT = pathlib.Path(__file__).resolve().parent.parent
SITE = pathlib.Path(os.environ.get('BOOK_HTML_DIR', ROOT / '_build' / 'html'))
SCREENSHOTS = SITE.parent / 'screenshots'
CHROMIUM = '/usr/bin/chromium'

CHAPTERS = {
    'bert': 'chapters/tabbed/bert.html',
    'bert-dataset': 'chapters/tabbed/bert-dataset.html',
    'bert-pretraining': 'chapters/tabbed/bert-pretraining.html',
}
TAB_STORAGE_KEY = 'sphinx-design-tab-id-framework'
JAPANESE = re.compile(r'[\u3040-\u30ff\u4e00-\u9fff]')


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope='module')
def site():
    missing = [
        p for p in ['index.html', 'search.html', *CHAPTERS.values()] if not (SITE / p).is_file()
    ]
    if missing:
        pytest.fail(
            f'the HTML book is not built ({SITE} lacks {", ".join(missing)}); run `make book` first'
        )
    return SITE


@pytest.fixture(scope='module')
def base_url(site):
    server = ThreadingHTTPServer(('127.0.0.1', 0), partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_address[1]}/'
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope='module')
def browser():
    from playwright.sync_api import sync_playwright

    hint = (
        "install Debian's browser and Japanese fonts with "
        '`apt-get install chromium fonts-noto-cjk` (or `make browser-deps`)'
    )
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f'{CHROMIUM} not found: {hint}')
    # without a Japanese font the pages (and the screenshots) show boxes instead of text
    fonts = subprocess.run(['fc-list', ':lang=ja', 'family'], capture_output=True, text=True)
    if fonts.returncode != 0 or not fonts.stdout.strip():
        pytest.fail(f'no Japanese font is installed: {hint}')
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


class Visit:
    """A fresh browser profile (empty localStorage) that records what goes wrong."""

    def __init__(self, browser, base_url, viewport=(1280, 900)):
        self.base_url = base_url
        width, height = viewport
        self.context = browser.new_context(
            viewport={'width': width, 'height': height}, locale='ja-JP', has_touch=width < 600
        )
        self.errors = []
        self.external = []
        self.context.route('**/*', self._route)
        self.page = self.context.new_page()
        self.page.on(
            'console',
            lambda m: (
                m.type == 'error'
                and self.errors.append(f'console: {m.text} ({m.location.get("url")})')
            ),
        )
        self.page.on('pageerror', lambda e: self.errors.append(f'pageerror: {e}'))

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.base_url) or url.startswith(('data:', 'blob:', 'about:')):
            route.continue_()
        else:
            self.external.append(url)
            route.abort()

    def open(self, path):
        response = self.page.goto(self.base_url + path, wait_until='load')
        assert response is not None and response.ok, f'{path}: HTTP {response and response.status}'
        return self.page

    def framework_state(self):
        """For every tab set synced on 'framework': (checked sync id, available sync ids)."""
        return self.page.evaluate("""() => {
            const sets = new Map();
            for (const label of document.querySelectorAll(
                    'label.sd-tab-label[data-sync-group="framework"]')) {
                const input = document.getElementById(label.htmlFor);
                const set = label.parentElement;
                if (!sets.has(set)) sets.set(set, {checked: null, ids: []});
                const entry = sets.get(set);
                entry.ids.push(label.dataset.syncId);
                if (input && input.checked) entry.checked = label.dataset.syncId;
            }
            return [...sets.values()];
        }""")

    def close(self):
        self.context.close()


VIEWPORTS = {'phone': (390, 844), 'desktop': (1280, 900)}


@pytest.fixture
def visit(browser, base_url):
    v = Visit(browser, base_url)
    yield v
    v.close()
    assert not v.external, f'requests that left the machine: {v.external}'
    assert not v.errors, 'JavaScript errors:\n' + '\n'.join(v.errors)


@pytest.fixture(params=list(VIEWPORTS))
def sized_visit(request, browser, base_url):
    """A visit on a phone (390x844) and on a desktop (1280x900)."""
    v = Visit(browser, base_url, VIEWPORTS[request.param])
    v.size = request.param
    yield v
    v.close()
    assert not v.external, f'requests that left the machine: {v.external}'
    assert not v.errors, 'JavaScript errors:\n' + '\n'.join(v.errors)


def test_pages_are_japanese(visit):
    for path in ['chapters/index.html', *CHAPTERS.values()]:
        page = visit.open(path)
        assert page.evaluate('document.documentElement.lang') == 'ja', path
        text = page.inner_text('article')
        assert len(JAPANESE.findall(text)) > 30, f'{path}: little Japanese text'
        # the theme's UI strings are Japanese too
        assert page.locator("button[aria-label='検索']").count() > 0, path
    assert '事前学習' in visit.open(CHAPTERS['bert-pretraining']).inner_text('h1')


def test_pages_load_nothing_from_the_network(site):
    remote = re.compile(
        r"<(?:script|link|img|iframe)\b[^>]*(?:src|href)=[\"'](?:https?:)?//", re.IGNORECASE
    )
    cdn = re.compile(r'cdn\.|jsdelivr|unpkg|googleapis', re.IGNORECASE)
    pages = sorted(site.rglob('*.html'))
    assert pages
    for page in pages:
        html = page.read_text(encoding='utf-8')
        assert not remote.search(html), f'{page}: loads {remote.search(html).group(0)}'
        assert not cdn.search(html), f'{page}: mentions a CDN ({cdn.search(html).group(0)})'


def test_cross_references_and_citations(visit):
    numrefs = 0
    for path in CHAPTERS.values():
        page = visit.open(path)
        for text in page.locator('article a .std-numref').all_text_contents():
            assert re.fullmatch(r'\d+(\.\d+)* 節', text.strip()), f'{path}: numref {text!r}'
            numrefs += 1
        for link in page.locator('article .bibtex-citation a').all():
            target = link.get_attribute('href')
            assert target.startswith('#'), f'{path}: citation points to another page ({target})'
            entry = page.locator(f"[id='{target[1:]}']")
            assert entry.count() == 1 and 'citation' in entry.get_attribute('class'), (
                f"{path}: citation {link.inner_text()} has no entry in the page's bibliography"
            )
    assert numrefs > 0, 'no numbered cross-reference in the chapters'


def test_framework_choice_syncs_and_persists(visit):
    page = visit.open(CHAPTERS['bert'])
    state = visit.framework_state()
    assert len(state) >= 2, 'the chapter should have several MXNet | PyTorch tab sets'
    assert all(s['checked'] == s['ids'][0] for s in state), 'a fresh visit shows the first tab'
    assert any(s['ids'] == ['mxnet', 'pytorch'] for s in state)

    page.locator(".framework-tabs label[data-sync-id='pytorch']").first.click()

    def all_pytorch():
        return [
            s
            for s in visit.framework_state()
            if 'pytorch' in s['ids'] and s['checked'] != 'pytorch'
        ] == []

    assert all_pytorch(), f'one click should switch every tab set: {visit.framework_state()}'
    visible = page.locator('.framework-tabs .sd-tab-content:visible')
    assert visible.count() > 0
    assert page.evaluate(f"localStorage.getItem('{TAB_STORAGE_KEY}')") == 'pytorch'

    page.reload(wait_until='load')
    assert all_pytorch(), 'the choice should survive a reload'

    # follow the book's own "next" link to the following chapter
    page.locator('a.right-next').click()
    page.wait_for_load_state('load')
    assert page.url.endswith(CHAPTERS['bert-dataset'])
    assert all_pytorch(), 'the choice should carry over to the next chapter'

    visit.open(CHAPTERS['bert-pretraining'])
    assert all_pytorch()


def test_math_is_rendered_offline(visit):
    rendered = 0
    for path in CHAPTERS.values():
        page = visit.open(path)
        formulas = page.locator('article .math').count()
        if not formulas:
            continue
        page.wait_for_function(
            "n => document.querySelectorAll('article mjx-container').length >= n",
            arg=formulas,
            timeout=30_000,
        )
        assert page.locator('mjx-merror, .MathJax_Error').count() == 0, f'{path}: TeX errors'
        rendered += formulas
    assert rendered > 0, 'no chapter has math'
    assert visit.page.evaluate('window.MathJax && MathJax.version').startswith('3.')


def _search(visit, query):
    page = visit.open(f'search.html?q={quote(query)}')
    page.wait_for_function(
        "() => document.querySelector('#search-results .search-summary')"
        " && document.querySelector('#search-results .search-summary').textContent.trim()",
        timeout=30_000,
    )
    return [a.get_attribute('href') for a in page.locator('#search-results ul.search li a').all()]


def test_search_finds_japanese_words_and_code(visit):
    hits = _search(visit, '事前学習')
    assert any('bert-pretraining.html' in h for h in hits), f'事前学習: {hits}'
    hits = _search(visit, 'load_data_wiki')
    assert any('bert-dataset.html' in h for h in hits), f'load_data_wiki: {hits}'


def test_pytorch_loss_plot_and_screenshot(visit):
    page = visit.open(CHAPTERS['bert-pretraining'])
    page.locator(".framework-tabs label[data-sync-id='pytorch']").first.click()
    images = page.locator('.framework-tabs .sd-tab-content:visible .cell_output img')
    assert images.count() > 0, 'the PyTorch tab of the pretraining chapter shows no plot'
    for i in range(images.count()):
        image = images.nth(i)
        image.scroll_into_view_if_needed()
        assert image.is_visible()
        assert image.evaluate('img => img.complete && img.naturalWidth > 0'), (
            f'plot {image.get_attribute("src")} did not load'
        )
    page.wait_for_function(
        "() => document.querySelectorAll('mjx-container').length > 0"
        " || document.querySelectorAll('.math').length === 0"
    )
    # a full-page capture shows the theme's fixed "skip to content" bar (normally off-screen)
    page.add_style_tag(content='#pst-skip-link { display: none; }')
    page.evaluate('window.scrollTo(0, 0)')  # else the sticky sidebars are drawn mid-page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / 'bert-pretraining-pytorch.png'), full_page=True)


def test_solutions_are_collapsed_and_open_on_click(visit):
    page = visit.open(CHAPTERS['bert-pretraining'])
    solutions = page.locator('.solution.dropdown')
    assert solutions.count() > 0, 'the teacher build should contain the solutions'
    first = solutions.first
    body = first.locator('section').first
    assert body.is_hidden(), 'a solution should start collapsed'
    first.locator('.admonition-title').click()
    body.wait_for(state='visible')
    assert first.locator('.cell').count() > 0, 'the solution should hold its code'


def test_chapters_offer_both_notebooks(visit):
    for name, path in CHAPTERS.items():
        page = visit.open(path)
        links = page.locator('article a.download')
        found = {}
        for i in range(links.count()):
            link = links.nth(i)
            href = link.get_attribute('href')
            if not href.endswith((f'/{name}-mxnet.ipynb', f'/{name}-pytorch.ipynb')):
                continue
            response = page.request.get(link.evaluate('a => a.href'))
            assert response.ok, f'{path}: {href} gives HTTP {response.status}'
            notebook = json.loads(response.body())
            code = '\n'.join(
                ''.join(c['source']) for c in notebook['cells'] if c['cell_type'] == 'code'
            )
            framework = 'mxnet' if 'MXNet' in link.inner_text() else 'pytorch'
            found[framework] = code
        assert set(found) == {'mxnet', 'pytorch'}, f'{path}: notebook links {found.keys()}'
        # each framework's notebook imports its own d2l library (the chapters' convention)
        for framework, module in [('mxnet', 'mxnet'), ('pytorch', 'torch')]:
            assert f'from d2l_extras import {module} as d2l' in found[framework], (
                f'{path}: the {framework} link gives a notebook of another framework'
            )


def _visible(page, selector):
    return [e for e in page.locator(selector).all() if e.is_visible()]


def test_menu_button_opens_a_chapter_list_whose_links_work(sized_visit):
    page = sized_visit.open(CHAPTERS['bert-pretraining'])
    buttons = _visible(page, '.primary-toggle')
    assert len(buttons) == 1, f'{sized_visit.size}: {len(buttons)} visible ☰ buttons'
    chapter_link = "a.reference[href$='bert-dataset.html']"
    if sized_visit.size == 'phone':
        nav = page.locator('#pst-primary-sidebar-modal')
        assert not nav.is_visible(), 'the chapter list should start closed on a phone'
        buttons[0].tap()
        nav.wait_for(state='visible')
        assert nav.evaluate('d => d.open'), '☰ should open the chapter list'
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / 'phone-sidebar-open.png'))
        # the tooltip of the tapped button must not cover the header's search button
        assert page.locator('.tooltip:visible').count() == 0, 'a tooltip stays on screen'
    else:
        nav = page.locator('#pst-primary-sidebar')
        assert nav.is_visible(), 'a desktop shows the chapter list from the start'
        buttons[0].click()
        page.wait_for_function(
            "() => document.querySelector('#pst-primary-sidebar')"
            ".classList.contains('pst-sidebar-hidden')"
        )
        buttons[0].click()
        page.wait_for_function(
            "() => !document.querySelector('#pst-primary-sidebar')"
            ".classList.contains('pst-sidebar-hidden')"
        )
    links = nav.locator(chapter_link)
    assert links.count() > 0, 'no chapter link in the list'
    links.first.wait_for(state='visible')  # the sidebar slides back in
    links.first.click()
    page.wait_for_load_state('load')
    assert page.url.endswith(CHAPTERS['bert-dataset'])


def test_contents_button_opens_the_page_contents(sized_visit):
    page = sized_visit.open(CHAPTERS['bert-pretraining'])
    toc_links = '#pst-page-toc-nav a'
    buttons = _visible(page, '.secondary-toggle')
    if not buttons:  # a wide screen shows the contents beside the page
        assert sized_visit.size == 'desktop', 'a phone needs the page-contents button'
        assert page.locator(toc_links).first.is_visible()
        return
    buttons[0].tap() if sized_visit.size == 'phone' else buttons[0].click()
    dialog = page.locator('#pst-secondary-sidebar-modal')
    dialog.wait_for(state='visible')
    links = dialog.locator(toc_links)
    assert links.count() > 2 and links.first.is_visible(), 'the contents list is empty'


ENGLISH_UI = [
    'Toggle primary sidebar',
    'Toggle secondary sidebar',
    'Color mode',
    'Copy to clipboard',
    'Link to this heading',
    'Toggle hidden content',
    'Discussions',
]


def test_no_english_ui_strings(sized_visit):
    """Visible text, tooltips (title, Bootstrap's data-bs-*) and labels read aloud."""
    for path in CHAPTERS.values():
        page = sized_visit.open(path)
        page.wait_for_load_state('load')
        found = page.evaluate(
            """strings => {
            const seen = [];
            const attributes = ["title", "aria-label", "data-bs-title",
                                "data-bs-original-title", "data-tooltip"];
            for (const element of document.querySelectorAll("body *")) {
                for (const attribute of attributes) {
                    const value = element.getAttribute(attribute);
                    if (value && strings.includes(value.trim())) seen.push(value);
                }
            }
            const text = document.body.innerText;
            for (const s of strings) if (text.includes(s)) seen.push(`text: ${s}`);
            return [...new Set(seen)];
        }""",
            ENGLISH_UI,
        )
        assert not found, f'{path} ({sized_visit.size}): English UI {found}'
        # a hovered button's tooltip is Japanese too
        page.locator('pre').first.hover()
        copy = page.locator('button.copybtn').first
        assert JAPANESE.search(copy.get_attribute('data-tooltip') or ''), 'copy button tooltip'


def test_no_code_block_of_the_pretraining_page_scrolls_sideways(visit):
    page = visit.open(CHAPTERS['bert-pretraining'])
    for framework in ['mxnet', 'pytorch']:
        page.locator(f".framework-tabs label[data-sync-id='{framework}']").first.click()
        wide = page.evaluate("""() => [...document.querySelectorAll("article pre")]
            .filter(pre => pre.offsetParent !== null && pre.scrollWidth > pre.clientWidth + 1)
            .map(pre => pre.textContent.slice(0, 60))""")
        blocks = page.evaluate("""() => [...document.querySelectorAll("article pre")]
            .filter(pre => pre.offsetParent !== null).length""")
        assert blocks > 10, f'{framework}: only {blocks} visible code blocks'
        assert not wide, f'{framework}: code blocks that scroll sideways: {wide}'


def test_the_two_download_links_save_different_file_names(visit):
    for path in CHAPTERS.values():
        page = visit.open(path)
        hrefs = [a.get_attribute('href') for a in page.locator('article a.download').all()]
        names = [h.rsplit('/', 1)[-1] for h in hrefs if h.endswith('.ipynb')]
        assert len(names) == 2, f'{path}: download links {hrefs}'
        assert len(set(names)) == 2, f'{path}: both downloads save {names[0]}'


def test_search_snippets_show_the_text_not_the_contents_or_tex(visit):
    for query in ['事前学習', 'マスク言語モデリング']:
        visit.open(f'search.html?q={quote(query)}')
        page = visit.page
        page.wait_for_function(
            "() => document.querySelector('#search-results .search-summary')"
            " && document.querySelector('#search-results .search-summary').textContent.trim()",
            timeout=30_000,
        )
        page.wait_for_function(
            "() => document.querySelectorAll('#search-results p.context').length > 0",
            timeout=30_000,
        )
        for snippet in page.locator('#search-results p.context').all_inner_texts():
            assert '\\(' not in snippet and '\\text' not in snippet, f'TeX: {snippet!r}'
            assert '目次' not in snippet and 'Contents' not in snippet, f'page TOC: {snippet!r}'
