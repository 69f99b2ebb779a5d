"""A Japanese search splitter that also indexes whole words.

Used through ``html_search_options: {type: booktools.sphinxext.search_ja.JapaneseCodeSplitter}``.
"""

import re
from typing import Any

from sphinx.application import Sphinx
from sphinx.search.ja import DefaultSplitter


class JapaneseCodeSplitter(DefaultSplitter):
    """Sphinx's default Japanese splitter (TinySegmenter) cuts ``load_data_wiki`` into
    ``load``, ``_data``, ``_wiki`` and 事前学習 into 事前, 学習, while searchtools.js sends the
    query as whole words (it splits only at non-word characters), so such queries found
    nothing. Indexing each whole ``\\w+`` run as well lets the exact or partial-match lookup
    of searchtools.js find identifiers and any Japanese phrase inside a sentence.
    """

    _word_runs = re.compile(r'\w+')

    def split(self, input: str) -> list[str]:
        words = super().split(input)
        seen = set(words)
        for run in self._word_runs.findall(input):
            if run not in seen:
                seen.add(run)
                words.append(run)
        return words


def setup(app: Sphinx) -> dict[str, Any]:
    # the splitter is chosen by html_search_options; nothing to register
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
