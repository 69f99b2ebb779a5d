"""One PDF per framework (``make pdf``): the book's pages with that framework's prose, code and
outputs only, typeset by LuaLaTeX with luatexja and the Noto CJK fonts.

    _build/pdf-src/<stem>/     the Jupyter Book tree of one PDF (generated for each build)
    _build/pdf/<stem>.pdf      bert-book-pytorch.pdf, bert-book-mxnet.pdf (teacher's edition,
                               with solutions), bert-book-pytorch-student.pdf, ... (none)

Each tree is built with ``jupyter-book build --builder pdflatex``; the HTML books link the PDFs
of their own edition under ``pdf/`` (:func:`publish` copies them there).
"""

import os
import pathlib
import shutil
import subprocess
import sys
import time

import yaml

from . import book, notebooks, sphinxext
from .frameworks import FRAMEWORKS, TITLES
from .paths import BUILD_DIR, ROOT, TABBED, notebook_path, tabbed_path

PDF_DIR = BUILD_DIR / 'pdf'
TREES_DIR = BUILD_DIR / 'pdf-src'
#: the front page of a PDF tree: a title for the LaTeX document, and the table of contents
ROOT_PAGE = 'chapters/pdf-root'
PREFACE = 'chapters/preface'

#: LaTeX settings of every PDF. Sphinx's defaults for Japanese (jsbook, upLaTeX) and for
#: LuaLaTeX (polyglossia, FreeSerif) are replaced: the class ltjsbook loads luatexja (Japanese
#: line breaking and spacing), luatexja-fontspec sets the Noto CJK fonts of Debian's
#: fonts-noto-cjk (Regular and Bold only: luatexja-preset's noto presets also want Medium);
#: DejaVu Sans Mono sets the code and outputs (box drawing, arrows); \tracinglostchars=2 logs every
#: missing glyph as "Missing character" (the tests read the log).
SPHINX_LATEX = {
    'latex_docclass': {'manual': 'ltjsbook'},  # the luatexja counterpart of jsbook
    'latex_use_xindy': False,  # no index in this book; makeindex needs no extra package
    'latex_elements': {
        'papersize': 'a4paper',
        'pointsize': '10pt',
        'polyglossia': '',
        'babel': '',
        'fontpkg': '\n'.join(
            [
                r'\usepackage{luatexja-fontspec}',
                r'\setmainjfont{Noto Serif CJK JP}[BoldFont=Noto Sans CJK JP Bold]',
                r'\setsansjfont{Noto Sans CJK JP}[BoldFont=Noto Sans CJK JP Bold]',
                r'\setmonofont{DejaVu Sans Mono}[Scale=MatchLowercase]',
                r'\setmonojfont{Noto Sans CJK JP}',
            ]
        ),
        'preamble': '\n'.join(
            [
                r'\tracinglostchars=2',
                r'\usepackage{etoolbox}',
                # the table of contents and the preface are front matter: unnumbered, roman pages
                # (the preface ends with \mainmatter)
                r'\pretocmd{\sphinxtableofcontents}{\frontmatter}{}{}',
                r'\patchcmd{\sphinxtableofcontents}{\pagenumbering{arabic}}{}{}'
                r'{\PackageWarning{bert-book}{sphinxtableofcontents not patched}}',
                r'\setlength{\footskip}{2\baselineskip}',  # ltjsbook leaves it 0 for fancyhdr
                # Sphinx adds the bibliography to the table of contents, and so does ltjsbook
                r'\patchcmd{\thebibliography}{\addcontentsline{toc}{chapter}{\bibname}}{}{}'
                r'{\PackageWarning{bert-book}{thebibliography of ltjsbook not patched}}',
            ]
        ),
        'fncychap': '',
        'printindex': '',
        'sphinxsetup': 'verbatimwrapslines=true, verbatimforcewraps=true',
    },
    # the plots are SVG: convert them to PDF (vector) for LaTeX, PNG only when no SVG exists
    'nb_mime_priority_overrides': [['latex', 'image/svg+xml', 15]],
}
EXTRA_EXTENSIONS = ['sphinxcontrib.rsvgconverter']


def pdf_stem(framework, student=False):
    return f'bert-book-{framework}' + ('-student' if student else '')


def pdf_title(framework, student=False):
    edition = '学生用' if student else '教員用'
    return f'BERT の事前学習（{TITLES[framework]} 版・{edition}）'


def _preface(framework, student, root):
    """The PDF's unnumbered preface: the front page's introduction (its text up to the
    first section; the sections after it describe the HTML book) and what this PDF holds."""
    front = (root / 'chapters' / 'index.md').read_text(encoding='utf-8')
    intro = front.split('\n## ', 1)[0].split('\n', 1)[1].strip()
    others = '、'.join(
        f'`{pdf_stem(fw, student)}.pdf`（{TITLES[fw]} 版）' for fw in FRAMEWORKS if fw != framework
    )
    contents = '演習の解答は含みません。' if student else '演習の解答も含みます。'
    return (
        '\n\n'.join(
            [
                '# はじめに',
                intro,
                f'この PDF は {TITLES[framework]} 版で、本文のコードと出力は'
                f' {TITLES[framework]} のものだけを収めています。{contents}'
                f'もう一方のフレームワークの版は {others} です。'
                f'各章のノートブックはリポジトリの `chapters/{framework}/` にあり、JupyterLab で'
                '実行できます。',
                '```{bibliography}\n```',
                '```{raw} latex\n\\mainmatter\n```',
            ]
        )
        + '\n'
    )


def _config(framework, student, root):
    config = yaml.safe_load((root / '_config.yml').read_text(encoding='utf-8'))
    config['title'] = pdf_title(framework, student)
    latex = config.setdefault('latex', {})
    latex['latex_documents'] = {
        'targetname': f'{pdf_stem(framework, student)}.tex',
        'toctree_only': True,
    }
    sphinx_config = config['sphinx']['config']
    # LaTeX gathers every bibliography into one list at the end of the PDF: the per-page
    # bibliographies would repeat works cited in two chapters there, so the preface holds
    # the only one
    extensions = []
    for name in sphinx_config['extensions']:
        if name == sphinxext.__name__:
            extensions += [
                f'{name}.{feature}' for feature in sphinxext.FEATURES if feature != 'bibliography'
            ]
        else:
            extensions.append(name)
    sphinx_config['extensions'] = extensions + EXTRA_EXTENSIONS
    sphinx_config.update(SPHINX_LATEX)
    return config


def _toc(root):
    """The book's chapters after the unnumbered preface (a part of its own, so that the
    chapters keep the numbers of the HTML book)."""
    toc = yaml.safe_load((root / '_toc.yml').read_text(encoding='utf-8'))
    if 'chapters' not in toc:
        raise ValueError(
            f'{root / "_toc.yml"}: the PDF build expects a list of chapters '
            '(no parts); adapt booktools/pdf.py:_toc to the new layout'
        )
    options = toc.pop('options', {})
    return {
        'format': toc['format'],
        'root': ROOT_PAGE,
        'parts': [{'chapters': [{'file': PREFACE}]}, {**options, 'chapters': toc['chapters']}],
    }


def book_tree(framework, target, student=False, root=ROOT):
    """Write the Jupyter Book tree of one PDF into ``target`` (replacing it).

    Its chapter pages hold only ``framework``'s prose, code cells and outputs; the student's
    tree starts from :func:`book.student_tree`, so no solution can reach its PDF.
    """
    if framework not in FRAMEWORKS:
        raise ValueError(f'framework={framework!r}: choose one of {", ".join(FRAMEWORKS)}')
    if student:
        book.student_tree(target, root)
        notebook_root = target
    else:
        if target.exists():
            shutil.rmtree(target)
        (target / 'chapters').mkdir(parents=True)
        for path in (root / 'chapters').iterdir():
            if path.is_file() and path.suffix != '.md':
                shutil.copy2(path, target / 'chapters' / path.name)
        book.copy_figures(root, target)
        notebook_root = root
    # the HTML book's tabbed pages and front page do not belong to the PDF tree
    shutil.rmtree(target / 'chapters' / TABBED, ignore_errors=True)
    (target / 'chapters' / 'index.md').unlink(missing_ok=True)

    chapters = book.load_chapters(root)
    index = book.label_index(chapters)
    for name, (_, items) in chapters.items():
        executed = {framework: book.read_notebook(notebook_path(name, framework, notebook_root))}
        if not notebooks.is_executed(executed[framework]):
            raise RuntimeError(
                f'{notebook_path(name, framework, notebook_root)} has code cells that were '
                'never executed; run `make notebooks` first'
            )
        nb = notebooks.tabbed_notebook(items, name, executed, index, student, framework)
        book.write_notebook(nb, tabbed_path(name, target))
    book.write_if_changed(target / f'{ROOT_PAGE}.md', f'# {pdf_title(framework, student)}\n')
    book.write_if_changed(target / f'{PREFACE}.md', _preface(framework, student, root))
    settings = {'_config.yml': _config(framework, student, root), '_toc.yml': _toc(root)}
    for name, data in settings.items():
        text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
        book.write_if_changed(target / name, text)
    return target


def build(framework, student=False, root=ROOT):
    """Build one PDF into _build/pdf/ and return its path."""
    stem = pdf_stem(framework, student)
    tree = book_tree(framework, TREES_DIR / stem, student, root)
    env = dict(os.environ, LATEXMKOPTS='-interaction=nonstopmode -halt-on-error')
    start = time.perf_counter()
    print(f'building {stem}.pdf ...', flush=True)
    result = subprocess.run(
        [
            str(pathlib.Path(sys.executable).with_name('jupyter-book')),
            'build',
            str(tree),
            '--builder',
            'pdflatex',
            '-W',
            '-n',
            '--keep-going',
        ],
        env=env,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    latex_dir = tree / '_build' / 'latex'
    built = latex_dir / f'{stem}.pdf'
    if result.returncode != 0 or not built.exists():
        print(result.stdout[-6000:], file=sys.stderr)
        raise RuntimeError(
            f'the PDF build of {stem} failed; the LaTeX log is {latex_dir / (stem + ".log")}'
        )
    PDF_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copy2(built, PDF_DIR / built.name)
    shutil.copy2(latex_dir / f'{stem}.log', PDF_DIR / f'{stem}.log')
    print(f'  {PDF_DIR / built.name} in {time.perf_counter() - start:.0f} s', flush=True)
    return PDF_DIR / built.name


def publish(student=False, site=None):
    """Copy the PDFs of one edition into its HTML site as ``pdf/bert-book-<framework>.pdf``
    (the name the HTML book links, :mod:`booktools.sphinxext.pdf_links`)."""
    site = site or (BUILD_DIR / 'student' / 'html' if student else BUILD_DIR / 'html')
    if not site.is_dir():
        return None
    (site / 'pdf').mkdir(exist_ok=True)
    for fw in FRAMEWORKS:
        shutil.copy2(PDF_DIR / f'{pdf_stem(fw, student)}.pdf', site / 'pdf' / f'{pdf_stem(fw)}.pdf')
    return site / 'pdf'
