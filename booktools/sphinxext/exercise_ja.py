"""The book's word for an exercise: 演習, as in the chapters' headings and the notebooks.

sphinx-exercise's Japanese catalog says 練習, and no option names the word: its box titles
come from ``numfig_format['exercise']`` (set in ``_config.yml``), but a solution's title
repeats the exercise directive's default title, which is the catalog's word. A translator
placed in front of sphinx-exercise's catalog supplies 演習 and leaves every other string to it.
"""

import gettext
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.locale import translators

BOOK_TERMS = {'ja': {'Exercise': '演習'}}
CATALOG = ('general', 'exercise')  # sphinx-exercise's message catalog


class _BookTerms(gettext.NullTranslations):
    def __init__(self, terms):
        super().__init__()
        self.terms = terms

    def gettext(self, message):
        if message in self.terms:
            return self.terms[message]
        return super().gettext(message)  # the fallback: sphinx-exercise's catalog


def use_book_terms(app: Sphinx, config: Config) -> None:
    terms = BOOK_TERMS.get(config.language)
    if not terms or isinstance(translators.get(CATALOG), _BookTerms):
        return
    book = _BookTerms(terms)
    if CATALOG in translators:
        book.add_fallback(translators[CATALOG])
    translators[CATALOG] = book


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension('sphinx_exercise')  # its catalog first, so ours goes in front
    app.connect('config-inited', use_book_terms)
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
