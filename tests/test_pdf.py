"""The PDFs (`make pdf`): one per framework, each with only its framework's code and outputs,
Japanese typeset without missing glyphs, solutions in the teacher's edition only, linked from
the HTML books.

The tests marked `pdf` read _build/pdf/ (run `make book book-student pdf` first); the others
check the per-framework pages that the PDFs are built from, in seconds.
"""

import pathlib
import re
import shutil
import subprocess

import pytest

from booktools import book, markup, notebooks, pdf
from booktools.frameworks import FRAMEWORKS, TAB_METADATA_KEY
from booktools.paths import notebook_path
from booktools.sphinxext.pdf_links import pdf_line

ROOT = pathlib.Path(__file__).resolve().parent.parent
OTHER = {'mxnet': 'pytorch', 'pytorch': 'mxnet'}


def _normalized(text):
    return re.sub(r'\s+', ' ', text).strip()


def _code_lines(framework):
    """Distinctive code lines (stripped, long enough not to occur by chance) of a framework."""
    lines = set()
    for name in book.chapter_names():
        nb = book.read_notebook(notebook_path(name, framework))
        for cell in nb.cells:
            if cell.cell_type == 'code':
                lines.update(
                    line.strip()
                    for line in cell.source.splitlines()
                    if len(line.strip()) >= 25 and not line.strip().startswith('#')
                )
    return lines


def _only_in(framework):
    return _code_lines(framework) - _code_lines(OTHER[framework])


def _chapters():
    return book.load_chapters()


def test_framework_page_holds_one_framework():
    chapters = _chapters()
    index = book.label_index(chapters)
    for framework in FRAMEWORKS:
        for name, (_, items) in chapters.items():
            executed = {framework: book.read_notebook(notebook_path(name, framework))}
            page = notebooks.tabbed_notebook(items, name, executed, index, framework=framework)
            code = [c for c in page.cells if c.cell_type == 'code']
            prose = '\n'.join(c.source for c in page.cells if c.cell_type == 'markdown')
            # the install cell is the notebook's own, not the chapter's: pages leave it out
            own = [
                c
                for c in executed[framework].cells
                if c.cell_type == 'code' and c.get('id') != notebooks.INSTALL_CELL
            ]
            assert [c.source for c in code] == [c.source for c in own], name
            assert all(TAB_METADATA_KEY not in c.metadata for c in code)
            assert '{tab-set}' not in prose and '{download}' not in prose
            for item in items:
                if item.kind == 'markdown' and item.tab:
                    first = markup.to_myst(item.text, index).strip().splitlines()[0]
                    assert (first in prose) == (item.tab == framework), (name, first)


@pytest.mark.pdf  # needs executed notebooks (`make notebooks`, which `make pdf` runs)
def test_pdf_tree_of_a_framework(tmp_path):
    tree = pdf.book_tree('mxnet', tmp_path / 'tree')
    pages = sorted(p.name for p in (tree / 'chapters' / 'tabbed').iterdir())
    assert pages == sorted(f'{n}.ipynb' for n in book.chapter_names())
    preface = (tree / 'chapters' / 'preface.md').read_text(encoding='utf-8')
    assert 'MXNet 版' in preface and '{bibliography}' in preface
    config = (tree / '_config.yml').read_text(encoding='utf-8')
    assert 'bert-book-mxnet.tex' in config and 'ltjsbook' in config


@pytest.mark.pdf
@pytest.mark.parametrize('student', [False, True], ids=['teacher', 'student'])
def test_pdf_tree_holds_every_figure_its_pages_show(tmp_path, student):
    tree = pdf.book_tree('pytorch', tmp_path / 'tree', student)
    pages = (tree / 'chapters' / 'tabbed').glob('*.ipynb')
    shown = {
        m for p in pages for m in re.findall(r'\(\.\./figures/([^)\s]+)\)', p.read_text('utf-8'))
    }
    assert shown, 'the chapters show figures'
    missing = [name for name in shown if not (tree / 'chapters' / 'figures' / name).is_file()]
    assert not missing, missing


def test_unknown_framework_is_named():
    with pytest.raises(ValueError, match='framework=.jax.'):
        pdf.book_tree('jax', ROOT / '_build' / 'unused')


def _pdf(stem):
    path = pdf.PDF_DIR / f'{stem}.pdf'
    if not path.exists():
        pytest.fail(f'{path} is missing: run `make pdf` first')
    if shutil.which('pdftotext') is None:
        pytest.fail('pdftotext is missing: `make pdf-deps` installs poppler-utils')
    text = subprocess.run(
        ['pdftotext', '-enc', 'UTF-8', str(path), '-'], check=True, capture_output=True, text=True
    ).stdout
    return _normalized(text)


def _pdf_lines(stem):
    """The PDF's text lines, normalized (code is compared line by line, not as substrings:
    one framework's line may be part of a longer line of the other's)."""
    path = pdf.PDF_DIR / f'{stem}.pdf'
    _pdf(stem)  # fails clearly when missing
    text = subprocess.run(
        ['pdftotext', '-enc', 'UTF-8', str(path), '-'], check=True, capture_output=True, text=True
    ).stdout
    return {_normalized(line) for line in text.splitlines()}


def _first_output_line(framework):
    """The first printed line of the framework's first chapter that prints anything."""
    for name in book.chapter_names():
        for cell in book.read_notebook(notebook_path(name, framework)).cells:
            for output in cell.get('outputs', []):
                if output.output_type == 'stream' and output.name == 'stdout':
                    line = next((x for x in output.text.splitlines() if len(x.strip()) > 10), None)
                    if line:
                        return line
    raise AssertionError(f'the {framework} notebooks print nothing')


@pytest.mark.pdf
@pytest.mark.parametrize('framework', FRAMEWORKS)
@pytest.mark.parametrize('student', [False, True], ids=['teacher', 'student'])
def test_pdf_holds_the_book(framework, student):
    text = _pdf(pdf.pdf_stem(framework, student))
    for name, (_, items) in _chapters().items():
        title = items[0].text.splitlines()[0].lstrip('# ').strip()
        assert _normalized(title) in text, (name, title)
    assert '事前学習' in text
    assert _normalized(_first_output_line(framework)) in text
    lines = _pdf_lines(pdf.pdf_stem(framework, student))
    own = _only_in(framework)
    found = [line for line in own if _normalized(line) in lines]
    assert len(found) >= len(own) // 2, 'most code lines of this framework are in its PDF'
    leaked = [line for line in _only_in(OTHER[framework]) if _normalized(line) in lines]
    assert not leaked, f'{OTHER[framework]} code in the {framework} PDF: {leaked[:3]}'


@pytest.mark.pdf
@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_solutions_only_in_teacher_pdf(framework):
    teacher = _pdf(pdf.pdf_stem(framework))
    student = _pdf(pdf.pdf_stem(framework, student=True))
    title = notebooks.REGION_TITLES['solution']  # the solution boxes' title, 解答 演習
    assert title in teacher and title not in student
    solution, shown = set(), []
    for name in book.chapter_names():
        for cell in book.read_notebook(notebook_path(name, framework)).cells:
            if notebooks.SOLUTION_TAG not in cell.metadata.get('tags', []):
                shown.append(cell.source)
            elif cell.cell_type == 'code':
                solution.update(
                    line.strip() for line in cell.source.splitlines() if len(line.strip()) >= 25
                )
    # the PDF text is searched for substrings: a line that is part of the chapter outside
    # its solutions (an exercise's stub, the model's settings) marks no solution
    shown = _normalized('\n'.join(shown))
    solution = {line for line in solution if _normalized(line) not in shown}
    assert solution
    assert any(_normalized(line) in teacher for line in solution)
    assert not [line for line in solution if _normalized(line) in student]


@pytest.mark.pdf
@pytest.mark.parametrize('stem', [pdf.pdf_stem(fw, s) for fw in FRAMEWORKS for s in (0, 1)])
def test_no_missing_glyphs(stem):
    log = pdf.PDF_DIR / f'{stem}.log'
    if not log.exists():
        pytest.fail(f'{log} is missing: run `make pdf` first')
    text = log.read_text(encoding='utf-8', errors='replace')
    tex = pdf.TREES_DIR / stem / '_build' / 'latex' / f'{stem}.tex'
    assert r'\tracinglostchars=2' in tex.read_text(encoding='utf-8')  # lost glyphs get logged
    assert 'Missing character' not in text
    assert 'not patched' not in text  # the preamble's patches of ltjsbook and Sphinx applied


@pytest.mark.pdf
@pytest.mark.parametrize('student', [False, True], ids=['teacher', 'student'])
def test_html_book_links_its_pdfs(student):
    site = ROOT / '_build' / ('student/html' if student else 'html')
    front = site / 'chapters' / 'index.html'
    if not front.exists():
        pytest.fail(f'{front} is missing: run `make book book-student` first')
    html = front.read_text(encoding='utf-8')
    for framework in FRAMEWORKS:
        assert f'href="../pdf/bert-book-{framework}.pdf"' in html
        copied = site / 'pdf' / f'bert-book-{framework}.pdf'
        built = pdf.PDF_DIR / f'{pdf.pdf_stem(framework, student)}.pdf'
        assert copied.read_bytes() == built.read_bytes(), copied


def test_pdf_line_is_relative_to_the_page():
    assert 'href="../pdf/bert-book-pytorch.pdf"' in pdf_line(1)
    assert 'href="pdf/bert-book-mxnet.pdf"' in pdf_line(0)
