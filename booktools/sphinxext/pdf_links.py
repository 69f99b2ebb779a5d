"""Link the PDFs of the book (one per framework, ``make pdf``) from the HTML front page.

``make pdf`` copies each edition's PDFs into its own site as ``pdf/bert-book-<framework>.pdf``
(:func:`booktools.pdf.publish`), so the teacher's and the student's sites link their own.
"""

from typing import Any

from sphinx.application import Sphinx

from ..frameworks import FRAMEWORKS, TITLES


def pdf_line(depth: int) -> str:
    """The front page's line of PDF links, from a page ``depth`` folders below the site."""
    links = '・'.join(
        f'<a class="book-pdf" href="{"../" * depth}pdf/bert-book-{fw}.pdf">{TITLES[fw]} 版</a>'
        for fw in FRAMEWORKS
    )
    return f'印刷やオフラインで読むための PDF 版（フレームワークごとに 1 冊）: {links}'


def add_pdf_links(app: Sphinx, docname: str, source: list[str]) -> None:
    if docname != app.config.root_doc or app.builder.format != 'html':
        return
    if not str(app.env.doc2path(docname)).endswith('.md'):
        return
    source[0] = source[0].rstrip('\n') + '\n\n' + pdf_line(docname.count('/')) + '\n'


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect('source-read', add_pdf_links)
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
