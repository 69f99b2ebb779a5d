"""Sphinx extension: MXNet | PyTorch tabs around the code cells of the tabbed notebooks.

A tabbed notebook (``chapters/tabbed/<name>.ipynb``) stores every code cell once per
framework, marked with the cell metadata ``"tab": "mxnet"`` or ``"tab": "pytorch"``. MyST-NB
renders each code cell as a ``container`` node (``nb_element="cell_code"``). This extension
wraps each *group* of them (a maximal run of consecutive tabbed code cells) into the same
sphinx-design nodes that a ``{tab-set}`` with ``:sync-group: framework`` produces, so that the
design-tabs.js of sphinx-design switches every tab set of the page at once (prose tab sets
included) and remembers the choice in the browser's localStorage (key
``sphinx-design-tab-id-framework``), across reloads and pages.

Code cells cannot simply be written inside a ``{tab-item}``: MyST-NB drops nested code cells.

The module also holds:

* a Japanese search splitter (``JapaneseCodeSplitter``) for ``html_search_options``;
* a ``source-read`` hook that ends every page with citations with its own bibliography;
* static files (``booktools/static``): the favicon and ``book-ja.js``, which completes the
  Japanese UI strings of the search page.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.search.ja import DefaultSplitter
from sphinx.transforms import SphinxTransform
from sphinx.util import logging
from sphinx_design.shared import create_component

logger = logging.getLogger(__name__)

#: cell metadata value -> tab label, in the order the tabs appear
FRAMEWORKS = {"mxnet": "MXNet", "pytorch": "PyTorch"}
SYNC_GROUP = "framework"


def _framework_of(node: nodes.Node) -> str | None:
    """The ``tab`` metadata of a rendered MyST-NB code cell, else None."""
    if not isinstance(node, nodes.container) or node.get("nb_element") != "cell_code":
        return None
    return node.get("cell_metadata", {}).get("tab")


def _tab_item(framework: str, cells: list[nodes.Node]) -> nodes.container:
    """One ``{tab-item}`` with ``:sync: <framework>``, holding ``cells``."""
    label = nodes.rubric(
        FRAMEWORKS[framework],
        nodes.Text(FRAMEWORKS[framework]),
        classes=["sd-tab-label"],
        sync_id=framework,
        sync_group=SYNC_GROUP,
    )
    content = create_component(
        "tab-content", classes=["sd-tab-content"], children=cells
    )
    return create_component(
        "tab-item",
        classes=["sd-tab-item"],
        selected=False,
        children=[label, content],
    )


class FrameworkTabs(SphinxTransform):
    """Wrap each group of consecutive tabbed code cells into a synced tab set."""

    # after sphinx-exercise gathers gated exercises/solutions (priority 10), before the
    # HTML post-transform of sphinx-design builds the radio inputs and labels
    default_priority = 500

    def apply(self, **kwargs: Any) -> None:
        for parent in list(self.document.findall(nodes.Element)):
            if any(_framework_of(child) for child in parent.children):
                self._wrap_groups(parent)

    def _wrap_groups(self, parent: nodes.Element) -> None:
        new_children: list[nodes.Node] = []
        group: list[nodes.Node] = []
        for child in parent.children:
            if _framework_of(child):
                group.append(child)
                continue
            if group:
                new_children.append(self._tab_set(group))
                group = []
            new_children.append(child)
        if group:
            new_children.append(self._tab_set(group))
        parent.children = []
        parent.extend(new_children)

    def _tab_set(self, cells: list[nodes.Node]) -> nodes.container:
        by_framework: dict[str, list[nodes.Node]] = {name: [] for name in FRAMEWORKS}
        for cell in cells:
            framework = _framework_of(cell)
            if framework not in FRAMEWORKS:
                logger.warning(
                    "code cell has tab metadata %r; expected one of %s "
                    "(fix the tabbed notebook generator)",
                    framework,
                    ", ".join(repr(name) for name in FRAMEWORKS),
                    location=cell,
                    type="framework_tabs",
                    subtype="unknown_tab",
                )
                continue
            by_framework[framework].append(cell)
        tab_set = create_component(
            "tab-set",
            classes=["sd-tab-set", "framework-tabs"],
            children=[
                _tab_item(framework, group)
                for framework, group in by_framework.items()
                if group
            ],
        )
        tab_set.source, tab_set.line = cells[0].source, cells[0].line
        return tab_set


class JapaneseCodeSplitter(DefaultSplitter):
    """Japanese search splitter that also indexes whole words.

    Sphinx's default Japanese splitter (TinySegmenter) cuts ``load_data_wiki`` into
    ``load``, ``_data``, ``_wiki`` and 事前学習 into 事前, 学習, while searchtools.js sends the
    query as whole words (it splits only at non-word characters), so such queries found
    nothing. Indexing each whole ``\\w+`` run as well lets the exact or partial-match lookup
    of searchtools.js find identifiers and any Japanese phrase inside a sentence.
    """

    _word_runs = re.compile(r"\w+")

    def split(self, input: str) -> list[str]:
        words = super().split(input)
        seen = set(words)
        for run in self._word_runs.findall(input):
            if run not in seen:
                seen.add(run)
                words.append(run)
        return words


BIBLIOGRAPHY_MARKDOWN = """\
```{rubric} 参考文献
```

```{bibliography}
:filter: docname in docnames
```
"""

_CITE_ROLE = re.compile(r"\{cite(:[a-z]+)?\}`")


def add_bibliography(app: Sphinx, docname: str, source: list[str]) -> None:
    """End every page that cites something with the list of the works it cites.

    Citations resolve to the bibliography of their own page first (sphinxcontrib-bibtex),
    so each chapter page lists its own references.
    """
    text = source[0]
    if not _CITE_ROLE.search(text) or "{bibliography}" in text:
        return
    if str(app.env.doc2path(docname)).endswith(".ipynb"):
        notebook = json.loads(text)
        cell = {"cell_type": "markdown", "metadata": {}, "source": BIBLIOGRAPHY_MARKDOWN}
        if (notebook.get("nbformat"), notebook.get("nbformat_minor", 0)) >= (4, 5):
            cell["id"] = "bibliography"  # cell ids exist since nbformat 4.5
        notebook["cells"].append(cell)
        source[0] = json.dumps(notebook, ensure_ascii=False)
    else:
        source[0] = text.rstrip("\n") + "\n\n" + BIBLIOGRAPHY_MARKDOWN


STATIC_DIR = Path(__file__).resolve().parent / "static"


def use_book_assets(app: Sphinx, config: Any) -> None:
    """Serve booktools/static, and use its favicon (else the browser asks for a missing
    /favicon.ico). Absolute paths, so a copy of the book's sources (the students' build)
    finds them too."""
    config.html_static_path.append(str(STATIC_DIR))
    if not config.html_favicon:
        config.html_favicon = str(STATIC_DIR / "favicon.svg")


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx_design")
    app.add_transform(FrameworkTabs)
    app.connect("source-read", add_bibliography)
    app.connect("config-inited", use_book_assets)
    # after translations.js, whose catalog it completes
    app.add_js_file("book-ja.js", priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
