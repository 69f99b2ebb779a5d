"""Command line of the build tooling.

    python -m booktools sync                 # sources -> notebooks + d2l_extras (+ tabbed pages)
    python -m booktools execute [NAME ...]   # run the per-framework notebooks, store outputs
    python -m booktools check                # fail if anything is out of sync with the sources
    python -m booktools student DIR          # a copy of the book without solutions
    python -m booktools offline-data DIR     # WikiText-2 valid+test as an offline corpus
"""
import argparse
import os
import pathlib
import sys
import time

from . import book
from .source import FRAMEWORKS

SHARED_DATA = book.SHARED_DIR / 'data' / 'wikitext-2'
OFFLINE_DIR = book.ROOT / '_build' / 'wikitext-2-offline'


def use_offline_corpus():
    """Point D2L_WIKITEXT2_DIR at the offline corpus, unless it is already set."""
    if 'D2L_WIKITEXT2_DIR' not in os.environ:
        os.environ['D2L_WIKITEXT2_DIR'] = str(book.offline_corpus(OFFLINE_DIR, SHARED_DATA))


def _execute(paths):
    import nbclient  # only this command needs a kernel

    for path in paths:
        nb = book.read_notebook(path)
        start = time.perf_counter()
        print(f'executing {path.relative_to(book.ROOT)} ...', flush=True)
        # record_timing=False: timestamps in cell metadata would make every run a change.
        nbclient.NotebookClient(nb, timeout=3600, kernel_name='python3', record_timing=False,
                                resources={'metadata': {'path': str(path.parent)}}).execute()
        book.write_notebook(nb, path)
        print(f'  done in {time.perf_counter() - start:.0f} s', flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m booktools')
    commands = parser.add_subparsers(dest='command', required=True)
    commands.add_parser('sync', help='regenerate notebooks and d2l_extras from chapters/*.md')
    run = commands.add_parser('execute', help='execute per-framework notebooks in place')
    run.add_argument('names', nargs='*', help='chapter names (default: all, or the stale)')
    run.add_argument('--framework', choices=FRAMEWORKS, action='append',
                     help='only this framework (repeatable)')
    run.add_argument('--stale', action='store_true',
                     help='only notebooks whose sources changed since their last run')
    commands.add_parser('check', help='fail when generated files differ from the sources')
    student = commands.add_parser('student', help='write the solution-free book tree')
    student.add_argument('target', type=pathlib.Path)
    offline = commands.add_parser('offline-data', help='build the offline corpus directory')
    offline.add_argument('target', type=pathlib.Path, nargs='?', default=OFFLINE_DIR)
    args = parser.parse_args(argv)

    if args.command == 'sync':
        stale = book.sync()
        for path in stale:
            print(f'needs executing: {path.relative_to(book.ROOT)}')
        return 0
    if args.command == 'execute':
        stale = book.sync()
        names = args.names or book.chapter_names()
        unknown = set(names) - set(book.chapter_names())
        if unknown:
            parser.error(f'unknown chapter(s) {", ".join(sorted(unknown))}; '
                         f'choose from {", ".join(book.chapter_names())}')
        paths = [book.notebook_path(n, fw) for n in names
                 for fw in (args.framework or FRAMEWORKS)]
        if args.stale:
            paths = [p for p in paths if p in stale]
        use_offline_corpus()
        _execute(paths)
        if not book.sync():
            print('tabbed pages updated')
        return 0
    if args.command == 'check':
        problems = book.out_of_sync()
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print('run `make notebooks` to regenerate and re-execute', file=sys.stderr)
        return 1 if problems else 0
    if args.command == 'student':
        print(book.student_tree(args.target))
        return 0
    if args.command == 'offline-data':
        print(book.offline_corpus(args.target, SHARED_DATA))
        return 0
    return 2


if __name__ == '__main__':
    sys.exit(main())
