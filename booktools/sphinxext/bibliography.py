"""End every page that cites something with the list of the works it cites.

Citations resolve to the bibliography of their own page first (sphinxcontrib-bibtex), so each
chapter page lists its own references.
"""

import json
import re
from typing import Any

from sphinx.application import Sphinx

BIBLIOGRAPHY_MARKDOWN = """\
```{rubric} 参考文献
```

```{bibliography}
:filter: docname in docnames
```
"""

_CITE_ROLE = re.compile(r'\{cite(:[a-z]+)?\}`')


def add_bibliography(app: Sphinx, docname: str, source: list[str]) -> None:
    text = source[0]
    if not _CITE_ROLE.search(text) or '{bibliography}' in text:
        return
    if str(app.env.doc2path(docname)).endswith('.ipynb'):
        notebook = json.loads(text)
        cell = {'cell_type': 'markdown', 'metadata': {}, 'source': BIBLIOGRAPHY_MARKDOWN}
        if (notebook.get('nbformat'), notebook.get('nbformat_minor', 0)) >= (4, 5):
            cell['id'] = 'bibliography'  # cell ids exist since nbformat 4.5
        notebook['cells'].append(cell)
        source[0] = json.dumps(notebook, ensure_ascii=False)
    else:
        source[0] = text.rstrip('\n') + '\n\n' + BIBLIOGRAPHY_MARKDOWN


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect('source-read', add_bibliography)
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
