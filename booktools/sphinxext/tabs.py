"""Sphinx extension: MXNet | PyTorch tabs around the code cells of the tabbed notebooks.

A tabbed notebook (``chapters/tabbed/<name>.ipynb``, written by ``python -m booktools
pages``) stores every code cell once per framework, marked with the cell metadata ``"tab":
"mxnet"`` or ``"tab": "pytorch"``. MyST-NB renders each code cell as a ``container`` node
(``nb_element="cell_code"``). This extension wraps each *group* of them (a maximal run of
consecutive tabbed code cells) into the same sphinx-design nodes that a ``{tab-set}`` with
``:sync-group: framework`` produces, so that the design-tabs.js of sphinx-design switches
every tab set of the page at once (prose tab sets included) and remembers the choice in the
browser's localStorage (key ``sphinx-design-tab-id-framework``), across reloads and pages.

Code cells cannot simply be written inside a ``{tab-item}``: MyST-NB drops nested code cells.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform
from sphinx.util import logging
from sphinx_design.shared import create_component

from ..frameworks import FRAMEWORKS, SYNC_GROUP, TAB_METADATA_KEY, TITLES

logger = logging.getLogger(__name__)


def _framework_of(node: nodes.Node) -> str | None:
    """The ``tab`` metadata of a rendered MyST-NB code cell, else None."""
    if not isinstance(node, nodes.container) or node.get('nb_element') != 'cell_code':
        return None
    return node.get('cell_metadata', {}).get(TAB_METADATA_KEY)


def _tab_item(framework: str, cells: list[nodes.Node]) -> nodes.container:
    """One ``{tab-item}`` with ``:sync: <framework>``, holding ``cells``."""
    label = nodes.rubric(
        TITLES[framework],
        nodes.Text(TITLES[framework]),
        classes=['sd-tab-label'],
        sync_id=framework,
        sync_group=SYNC_GROUP,
    )
    content = create_component('tab-content', classes=['sd-tab-content'], children=cells)
    return create_component(
        'tab-item',
        classes=['sd-tab-item'],
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
                    'code cell has tab metadata %r; expected one of %s '
                    '(fix the tabbed notebook generator)',
                    framework,
                    ', '.join(repr(name) for name in FRAMEWORKS),
                    location=cell,
                    type='framework_tabs',
                    subtype='unknown_tab',
                )
                continue
            by_framework[framework].append(cell)
        tab_set = create_component(
            'tab-set',
            classes=['sd-tab-set', 'framework-tabs'],
            children=[
                _tab_item(framework, group) for framework, group in by_framework.items() if group
            ],
        )
        tab_set.source, tab_set.line = cells[0].source, cells[0].line
        return tab_set


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension('sphinx_design')
    app.add_transform(FrameworkTabs)
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
