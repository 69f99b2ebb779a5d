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
SITE = pathlib.Path(os.environ.get("BOOK_HTML_DIR", ROOT / "_build" / "html"))
SCREENSHOTS = SITE.parent / "screenshots"
CHROMIUM = "/usr/bin/chromium"

CHAPTERS = {
    "bert": "chapters/tabbed/bert.html",
    "bert-dataset": "chapters/tabbed/bert-dataset.html",
    "bert-pretraining": "chapters/tabbed/bert-pretraining.html",
}
TAB_STORAGE_KEY = "sphinx-design-tab-id-framework"
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    missing = [p for p in ["index.html", "search.html", *CHAPTERS.values()]
               if not (SITE / p).is_file()]
    if missing:
        pytest.fail(f"the HTML book is not built ({SITE} lacks {', '.join(missing)}); "
                    "run `make book` first")
    return SITE


@pytest.fixture(scope="module")
def base_url(site):
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    hint = ("install Debian's browser and Japanese fonts with "
            "`apt-get install chromium fonts-noto-cjk` (or `make browser-deps`)")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: {hint}")
    # without a Japanese font the pages (and the screenshots) show boxes instead of text
    fonts = subprocess.run(["fc-list", ":lang=ja", "family"], capture_output=True, text=True)
    if fonts.returncode != 0 or not fonts.stdout.strip():
        pytest.fail(f"no Japanese font is installed: {hint}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


class Visit:
    """A fresh browser profile (empty localStorage) that records what goes wrong."""

    def __init__(self, browser, base_url):
        self.base_url = base_url
        self.context = browser.new_context(viewport={"width": 1280, "height": 900},
                                           locale="ja-JP")
        self.errors = []
        self.external = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(
            f"console: {m.text} ({m.location.get('url')})"))
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.base_url) or url.startswith(("data:", "blob:", "about:")):
            route.continue_()
        else:
            self.external.append(url)
            route.abort()

    def open(self, path):
        response = self.page.goto(self.base_url + path, wait_until="load")
        assert response is not None and response.ok, f"{path}: HTTP {response and response.status}"
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


@pytest.fixture
def visit(browser, base_url):
    v = Visit(browser, base_url)
    yield v
    v.close()
    assert not v.external, f"requests that left the machine: {v.external}"
    assert not v.errors, "JavaScript errors:\n" + "\n".join(v.errors)


def test_pages_are_japanese(visit):
    for path in ["chapters/index.html", *CHAPTERS.values()]:
        page = visit.open(path)
        assert page.evaluate("document.documentElement.lang") == "ja", path
        text = page.inner_text("article")
        assert len(JAPANESE.findall(text)) > 30, f"{path}: little Japanese text"
        # the theme's UI strings are Japanese too
        assert page.locator("button[aria-label='検索']").count() > 0, path
    assert "事前学習" in visit.open(CHAPTERS["bert-pretraining"]).inner_text("h1")


def test_pages_load_nothing_from_the_network(site):
    remote = re.compile(r"<(?:script|link|img|iframe)\b[^>]*(?:src|href)=[\"'](?:https?:)?//",
                        re.IGNORECASE)
    cdn = re.compile(r"cdn\.|jsdelivr|unpkg|googleapis", re.IGNORECASE)
    pages = sorted(site.rglob("*.html"))
    assert pages
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert not remote.search(html), f"{page}: loads {remote.search(html).group(0)}"
        assert not cdn.search(html), f"{page}: mentions a CDN ({cdn.search(html).group(0)})"


def test_cross_references_and_citations(visit):
    numrefs = 0
    for path in CHAPTERS.values():
        page = visit.open(path)
        for text in page.locator("article a .std-numref").all_inner_texts():
            assert re.fullmatch(r"\d+(\.\d+)* 節", text.strip()), f"{path}: numref {text!r}"
            numrefs += 1
        for link in page.locator("article .bibtex-citation a").all():
            target = link.get_attribute("href")
            assert target.startswith("#"), f"{path}: citation points to another page ({target})"
            entry = page.locator(f"[id='{target[1:]}']")
            assert entry.count() == 1 and "citation" in entry.get_attribute("class"), \
                f"{path}: citation {link.inner_text()} has no entry in the page's bibliography"
    assert numrefs > 0, "no numbered cross-reference in the chapters"


def test_framework_choice_syncs_and_persists(visit):
    page = visit.open(CHAPTERS["bert"])
    state = visit.framework_state()
    assert len(state) >= 2, "the chapter should have several MXNet | PyTorch tab sets"
    assert all(s["checked"] == s["ids"][0] for s in state), "a fresh visit shows the first tab"
    assert any(s["ids"] == ["mxnet", "pytorch"] for s in state)

    page.locator(".framework-tabs label[data-sync-id='pytorch']").first.click()

    def all_pytorch():
        return [s for s in visit.framework_state()
                if "pytorch" in s["ids"] and s["checked"] != "pytorch"] == []

    assert all_pytorch(), f"one click should switch every tab set: {visit.framework_state()}"
    visible = page.locator(".framework-tabs .sd-tab-content:visible")
    assert visible.count() > 0
    assert page.evaluate(f"localStorage.getItem('{TAB_STORAGE_KEY}')") == "pytorch"

    page.reload(wait_until="load")
    assert all_pytorch(), "the choice should survive a reload"

    # follow the book's own "next" link to the following chapter
    page.locator("a.right-next").click()
    page.wait_for_load_state("load")
    assert page.url.endswith(CHAPTERS["bert-dataset"])
    assert all_pytorch(), "the choice should carry over to the next chapter"

    visit.open(CHAPTERS["bert-pretraining"])
    assert all_pytorch()


def test_math_is_rendered_offline(visit):
    rendered = 0
    for path in CHAPTERS.values():
        page = visit.open(path)
        formulas = page.locator("article .math").count()
        if not formulas:
            continue
        page.wait_for_function(
            "n => document.querySelectorAll('article mjx-container').length >= n",
            arg=formulas, timeout=30_000)
        assert page.locator("mjx-merror, .MathJax_Error").count() == 0, f"{path}: TeX errors"
        rendered += formulas
    assert rendered > 0, "no chapter has math"
    assert visit.page.evaluate("window.MathJax && MathJax.version").startswith("3.")


def _search(visit, query):
    page = visit.open(f"search.html?q={quote(query)}")
    page.wait_for_function(
        "() => document.querySelector('#search-results .search-summary')"
        " && document.querySelector('#search-results .search-summary').textContent.trim()",
        timeout=30_000)
    return [a.get_attribute("href") for a in page.locator("#search-results ul.search li a").all()]


def test_search_finds_japanese_words_and_code(visit):
    hits = _search(visit, "事前学習")
    assert any("bert-pretraining.html" in h for h in hits), f"事前学習: {hits}"
    hits = _search(visit, "load_data_wiki")
    assert any("bert-dataset.html" in h for h in hits), f"load_data_wiki: {hits}"


def test_pytorch_loss_plot_and_screenshot(visit):
    page = visit.open(CHAPTERS["bert-pretraining"])
    page.locator(".framework-tabs label[data-sync-id='pytorch']").first.click()
    images = page.locator(".framework-tabs .sd-tab-content:visible .cell_output img")
    assert images.count() > 0, "the PyTorch tab of the pretraining chapter shows no plot"
    for i in range(images.count()):
        image = images.nth(i)
        image.scroll_into_view_if_needed()
        assert image.is_visible()
        assert image.evaluate("img => img.complete && img.naturalWidth > 0"), \
            f"plot {image.get_attribute('src')} did not load"
    page.wait_for_function("() => document.querySelectorAll('mjx-container').length > 0"
                           " || document.querySelectorAll('.math').length === 0")
    # a full-page capture shows the theme's fixed "skip to content" bar (normally off-screen)
    page.add_style_tag(content="#pst-skip-link { display: none; }")
    page.evaluate("window.scrollTo(0, 0)")  # else the sticky sidebars are drawn mid-page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "bert-pretraining-pytorch.png"), full_page=True)


def test_solutions_are_collapsed_and_open_on_click(visit):
    page = visit.open(CHAPTERS["bert-pretraining"])
    solutions = page.locator(".solution.dropdown")
    assert solutions.count() > 0, "the teacher build should contain the solutions"
    first = solutions.first
    body = first.locator("section").first
    assert body.is_hidden(), "a solution should start collapsed"
    first.locator(".admonition-title").click()
    body.wait_for(state="visible")
    assert first.locator(".cell").count() > 0, "the solution should hold its code"


def test_chapters_offer_both_notebooks(visit):
    for name, path in CHAPTERS.items():
        page = visit.open(path)
        links = page.locator("article a.download")
        found = {}
        for i in range(links.count()):
            link = links.nth(i)
            href = link.get_attribute("href")
            if not href.endswith(f"/{name}.ipynb"):
                continue
            response = page.request.get(link.evaluate("a => a.href"))
            assert response.ok, f"{path}: {href} gives HTTP {response.status}"
            notebook = json.loads(response.body())
            code = "\n".join("".join(c["source"]) for c in notebook["cells"]
                             if c["cell_type"] == "code")
            framework = "mxnet" if "MXNet" in link.inner_text() else "pytorch"
            found[framework] = code
        assert set(found) == {"mxnet", "pytorch"}, f"{path}: notebook links {found.keys()}"
        # each framework's notebook imports its own d2l library (the chapters' convention)
        for framework, module in [("mxnet", "mxnet"), ("pytorch", "torch")]:
            assert f"from d2l_extras import {module} as d2l" in found[framework], \
                f"{path}: the {framework} link gives a notebook of another framework"
