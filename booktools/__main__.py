"""Command line of the build tooling.

python -m booktools sync                 # sources -> notebooks + d2l_extras (outputs kept)
python -m booktools execute [NAME ...]   # run the per-framework notebooks, store outputs
                                         # (--stale: only those whose code or d2l_extras changed)
python -m booktools check                # fail if anything is out of sync with the sources
python -m booktools pages                # the tabbed book pages, from the notebooks
python -m booktools student DIR          # a copy of the book without solutions
python -m booktools offline-data [DIR]   # WikiText-2 valid+test as an offline corpus
python -m booktools classroom [DIR]      # the nbgrader course: source/ and release/
python -m booktools pdf [--framework F] [--student]   # one PDF per framework (_build/pdf)
"""

import argparse
import pathlib
import sys
import time

from . import book, corpus, library, notebooks, pdf
from .frameworks import FRAMEWORKS
from .paths import OFFLINE_CORPUS_DIR, ROOT, notebook_path


def _execute(paths, root=ROOT):
    """Run each notebook in a fresh kernel and store its outputs, with what they ran against
    (its code cells and the d2l_extras modules as they are now, just before it runs)."""
    import nbclient  # only this command needs a kernel

    for path in paths:
        nb = book.read_notebook(path)
        ran_against = book.executed_with(nb, library.Package(root))
        start = time.perf_counter()
        print(f'executing {path.relative_to(root)} ...', flush=True)
        # record_timing=False: timestamps in cell metadata would make every run a change.
        nbclient.NotebookClient(
            nb,
            timeout=3600,
            kernel_name='python3',
            record_timing=False,
            resources={'metadata': {'path': str(path.parent)}},
        ).execute()
        notebooks.record_executed_with(nb, ran_against)
        book.write_notebook(nb, path)
        print(f'  done in {time.perf_counter() - start:.0f} s', flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m booktools')
    commands = parser.add_subparsers(dest='command', required=True)
    commands.add_parser('sync', help='regenerate notebooks and d2l_extras from chapters/*.md')
    run = commands.add_parser('execute', help='execute per-framework notebooks in place')
    run.add_argument('names', nargs='*', help='chapter names (default: all, or the stale)')
    run.add_argument(
        '--framework', choices=FRAMEWORKS, action='append', help='only this framework (repeatable)'
    )
    run.add_argument(
        '--stale',
        action='store_true',
        help='only notebooks whose code, or the d2l_extras code they use, changed since '
        'their last run',
    )
    commands.add_parser('check', help='fail when generated files differ from the sources')
    commands.add_parser('pages', help='write chapters/tabbed/*.ipynb for the HTML book')
    student = commands.add_parser('student', help='write the solution-free book tree')
    student.add_argument('target', type=pathlib.Path)
    offline = commands.add_parser('offline-data', help='build the offline corpus directory')
    offline.add_argument('target', type=pathlib.Path, nargs='?', default=OFFLINE_CORPUS_DIR)
    course = commands.add_parser('classroom', help='build the nbgrader course from the chapters')
    course.add_argument(
        'target',
        type=pathlib.Path,
        nargs='?',
        default=None,
        help='course directory (default: _build/classroom)',
    )
    pdfs = commands.add_parser('pdf', help='one PDF per framework into _build/pdf/')
    pdfs.add_argument(
        '--framework', choices=FRAMEWORKS, action='append', help='only this framework (repeatable)'
    )
    pdfs.add_argument(
        '--student', action='store_true', help="also the student's edition (no solutions)"
    )
    args = parser.parse_args(argv)

    if args.command == 'sync':
        for path in book.sync():
            print(f'needs executing: {path.relative_to(ROOT)}')
        return 0
    if args.command == 'execute':
        stale = book.sync()
        names = args.names or book.chapter_names()
        unknown = set(names) - set(book.chapter_names())
        if unknown:
            parser.error(
                f'unknown chapter(s) {", ".join(sorted(unknown))}; '
                f'choose from {", ".join(book.chapter_names())}'
            )
        paths = [notebook_path(n, fw) for n in names for fw in (args.framework or FRAMEWORKS)]
        if args.stale:
            paths = [p for p in paths if p in stale]
        corpus.use_offline_corpus()
        _execute(paths)
        return 0
    if args.command == 'check':
        problems = book.out_of_sync()
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    if args.command == 'pages':
        book.write_pages()
        return 0
    if args.command == 'student':
        print(book.student_tree(args.target))
        return 0
    if args.command == 'pdf':
        editions = (False, True) if args.student else (False,)
        try:
            for student in editions:
                for fw in args.framework or FRAMEWORKS:
                    pdf.build(fw, student)
                if not args.framework and (where := pdf.publish(student)):
                    print(f'copied into {where.relative_to(ROOT)}')
        except RuntimeError as error:
            print(f'error: {error}', file=sys.stderr)
            return 1
        return 0
    if args.command == 'offline-data':
        print(corpus.offline_corpus(args.target))
        return 0
    if args.command == 'classroom':
        from . import classroom  # imports nbgrader

        target = args.target or classroom.COURSE_DIR
        for assignment in classroom.build(target):
            print(f'{target / "release" / assignment}')
        return 0
    return 2


if __name__ == '__main__':
    sys.exit(main())
