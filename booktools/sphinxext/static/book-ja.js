// Sphinx 7.4's Japanese catalog translates the search page's closing sentence to an empty
// string, so a finished search never said so; supply the Japanese sentence.
(() => {
  const key = "Search finished, found ${resultCount} page(s) matching the search query.";
  // `Documentation` (doctools.js) is a global const, not a property of window
  if (typeof Documentation !== "undefined" && !Documentation.TRANSLATIONS[key]) {
    Documentation.TRANSLATIONS[key] =
      "検索が完了しました。${resultCount} 件見つかりました。";
  }
})();

// sphinx-copybutton 0.5.2 has no Japanese messages and no option for them; its `messages`
// and `locale` are globals of copybutton.js, which ran before this file (it adds its
// buttons on DOMContentLoaded, after this).
if (typeof messages !== "undefined" && typeof locale !== "undefined") {
  messages.ja = {
    copy: "コピー",
    copy_to_clipboard: "クリップボードにコピー",
    copy_success: "コピーしました",
    copy_failure: "コピーできませんでした",
  };
  locale = "ja";
}

// UI strings that the themes write in English whatever `language` says (no _() around them
// in sphinx-book-theme 1.3's templates, sphinx-togglebutton's JS, Sphinx 7.4's ja catalog).
const BOOK_UI_JA = {
  "Toggle primary sidebar": "目次を開く",
  "Toggle secondary sidebar": "このページの内容",
  "Color mode": "表示の色",
  "Copy to clipboard": "クリップボードにコピー",
  "Copy": "コピー",
  "Link to this heading": "この見出しへのリンク",
  "Link to this image": "この画像へのリンク",
  "Link to this code": "このコードへのリンク",
  "Link to this table": "この表へのリンク",
  "Toggle hidden content": "隠れた内容を表示",
  "Fullscreen mode": "全画面表示",
  "Download this page": "このページをダウンロード",
};

function translateBookUi(root = document) {
  const attributes = ["title", "aria-label", "data-bs-title", "data-bs-original-title",
                      "data-tooltip"];
  for (const attribute of attributes) {
    for (const element of root.querySelectorAll(`[${attribute}]`)) {
      const ja = BOOK_UI_JA[element.getAttribute(attribute).trim()];
      if (ja === undefined) continue;
      element.setAttribute(attribute, ja);
      // a Bootstrap tooltip built before this reads its own copy of the title
      const tooltip = window.bootstrap && bootstrap.Tooltip.getInstance(element);
      if (tooltip) tooltip.setContent({ ".tooltip-inner": ja });
    }
  }
}

// pydata-sphinx-theme 0.17.1 and sphinx-book-theme 1.3.0 attach their sidebar handlers to the
// first `.primary-toggle` / `.secondary-toggle` only, a hidden header icon
// (pydata-sphinx-theme#2451, open); a click on any other toggle is passed on to that one.
function forwardSidebarToggles() {
  for (const selector of [".primary-toggle", ".secondary-toggle"]) {
    const [first, ...others] = document.querySelectorAll(selector);
    for (const other of others) {
      other.addEventListener("click", (event) => {
        event.preventDefault();
        event.stopPropagation();
        other.blur();
        // the tooltip would stay on screen over the search button (it opened on hover/focus)
        const tooltip = window.bootstrap && bootstrap.Tooltip.getInstance(other);
        if (tooltip) tooltip.hide();
        first.click();
      });
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  translateBookUi();
  forwardSidebarToggles();
});
// togglebutton.js and copybutton.js add their buttons on DOMContentLoaded too
window.addEventListener("load", () => translateBookUi());

// Search snippets: Sphinx takes the text of the whole `[role=main]`, which in these themes
// also holds the page's table of contents, the header buttons and the TeX of every formula.
// searchtools.js loads after this file; its own search starts on DOMContentLoaded too, later.
document.addEventListener("DOMContentLoaded", () => {
  if (typeof Search === "undefined") return;
  const sphinxHtmlToText = Search.htmlToText;
  Search.htmlToText = (htmlString, anchor) => {
    const html = new DOMParser().parseFromString(htmlString, "text/html");
    const noise = [".bd-sidebar-secondary", ".bd-header-article", ".bd-footer-article", ".onlyprint",
                   ".prev-next-area", ".math", "nav", ".copybtn", ".toggle-button"];
    html.querySelectorAll(noise.join(", ")).forEach((element) => element.remove());
    return sphinxHtmlToText(html.documentElement.outerHTML, anchor);
  };
});
