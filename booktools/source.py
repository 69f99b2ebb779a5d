"""Parse a chapter source written in d2lbook markdown into a flat list of items.

The markup (the same as the spec chapter's):

- ```` ```{.python .input} ```` code blocks; a first line ``#@tab pytorch|mxnet|all`` picks the
  frameworks (no tab line means MXNet), ``#@save`` sends the block to ``d2l_extras``, and
  ``#@check_output`` asks nbval to compare the cell's output on re-runs, and ``#@parameters``
  marks the cell whose variables papermill may override (the benchmark sets the step count);
- ``:begin_tab:`pytorch``` ... ``:end_tab:`` for prose that only one framework needs;
- ``:begin_exercise:`label``` ... ``:end_exercise:`` and ``:begin_solution:`label``` ...
  ``:end_solution:`` around exercises and their solutions (they may hold code blocks).

Grading markup for the nbgrader course (``booktools.classroom``), only inside those regions:

- ``#@setup`` (exercise region): code the course runs before the exercises; not in the book;
- ``#@answer`` (solution region): the block is the student's autograded answer cell in the
  course; nbgrader's ``### BEGIN SOLUTION`` / ``### END SOLUTION`` lines in it mark what the
  student writes, and the book shows the block without them;
- ``#@test points=N`` (solution region): an autograded test cell worth N points, with
  nbgrader's ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS`` around the hidden checks;
  not in the book;
- a prose line ``:answer:`N``` (solution region): the solution's prose that follows, up to the
  next code block, is the model answer of a manually graded answer cell worth N points.

Blocks that exist only for the course (setup, tests) are left out of :func:`parse` unless
``course=True``, so the book, its notebooks and the student edition never see them.
"""

import dataclasses
import re

from .frameworks import DEFAULT_FRAMEWORK, FRAMEWORKS

_FENCE_OPEN = re.compile(r'^```\{\.python \.input\}\s*$')
_FENCE_CLOSE = re.compile(r'^```\s*$')
_REGION = re.compile(r'^:(begin|end)_(tab|exercise|solution):(?:`([^`]+)`)?\s*$')
_TAB_LINE = re.compile(r'^#@tab\s+(\w+)\s*$')
#: cell markers -> the notebook cell tag they become
CELL_TAG_MARKERS = {'#@check_output': 'nbval-check-output', '#@parameters': 'parameters'}
_TEST_LINE = re.compile(r'^#@test\s+points=(\d+)\s*$')
_PROSE_ANSWER = re.compile(r'^:answer:`(\d+)`\s*$')
#: nbgrader's delimiters of what the student writes; the book shows code without them
SOLUTION_DELIMITERS = ('### BEGIN SOLUTION', '### END SOLUTION')
#: grading kinds that exist only in the course, never in the book
COURSE_ONLY = ('setup', 'test')


@dataclasses.dataclass(frozen=True)
class Grading:
    """What an item is in the nbgrader course: kind 'setup', 'answer' (code: autograded
    answer cell; prose: manually graded, worth ``points``) or 'test' (worth ``points``).
    ``text`` is the cell's course source (an answer keeps nbgrader's delimiters)."""

    kind: str
    points: int = 0
    text: str = ''


@dataclasses.dataclass(frozen=True)
class Item:
    """One piece of a chapter: a run of markdown or one code block.

    ``tab`` is the framework a prose piece belongs to (None: both); for code it is
    'mxnet', 'pytorch' or 'all'. ``region`` is None, ('exercise', label) or
    ('solution', label). ``line`` is where the item starts in its chapter file (1-based).
    """

    kind: str  # 'markdown' or 'code'
    text: str
    tab: str | None = None
    save: bool = False
    tags: tuple = ()
    region: tuple | None = None
    line: int = 0
    grading: Grading | None = None

    def frameworks(self):
        """The frameworks this item is shown for."""
        if self.tab in (None, 'all'):
            return FRAMEWORKS
        return (self.tab,)


class SourceError(ValueError):
    """A chapter source that does not follow the markup."""


def _code_item(lines, region, where, line):
    tab, save, tags, grading = DEFAULT_FRAMEWORK, False, [], None
    body = list(lines)
    # Markers sit on the first lines of the block, in any order.
    while body and body[0].startswith('#@'):
        marker = body[0].strip()
        if m := _TAB_LINE.match(marker):
            tab = m.group(1)
            if tab not in FRAMEWORKS + ('all',):
                raise SourceError(
                    f'{where}: unknown tab {tab!r}; use one of {", ".join(FRAMEWORKS)} or all'
                )
            body.pop(0)
        elif marker == '#@save':
            save = True
            body.pop(0)
        elif marker in CELL_TAG_MARKERS:
            tags.append(CELL_TAG_MARKERS[marker])
            body.pop(0)
        elif marker in ('#@setup', '#@answer') or _TEST_LINE.match(marker):
            kind = marker[2:].split()[0]
            needed = 'exercise' if kind == 'setup' else 'solution'
            if not region or region[0] != needed:
                raise SourceError(
                    f'{where}: {marker.split()[0]} belongs inside a :begin_{needed}: region'
                )
            m = _TEST_LINE.match(marker)
            grading = Grading(kind, int(m.group(1)) if m else 0)
            body.pop(0)
        elif marker.startswith('#@test'):
            raise SourceError(f'{where}: write the test marker as "#@test points=N"')
        else:
            raise SourceError(f'{where}: unknown marker {marker!r}')
    if save:
        body.insert(0, '#@save')  # readers see what goes into d2l_extras, as in d2l
    text = '\n'.join(body).strip('\n')
    if grading:
        grading = dataclasses.replace(grading, text=text)
        if grading.kind == 'answer':
            if not any(SOLUTION_DELIMITERS[0] in line for line in body):
                raise SourceError(
                    f'{where}: an #@answer block needs "### BEGIN SOLUTION" '
                    'and "### END SOLUTION" around what the student writes'
                )
            text = '\n'.join(
                line for line in body if line.strip() not in SOLUTION_DELIMITERS
            ).strip('\n')
    return Item('code', text, tab, save, tuple(tags), region, line, grading)


def parse(text, name='<chapter>', course=False):
    """Split a d2lbook markdown chapter into a list of Items, in order.

    ``course=True`` keeps the blocks that only the nbgrader course uses (setup, tests).
    """
    items, prose = [], []  # prose: (line number, text) of the markdown run being read
    tab, region = None, None
    prose_points = None  # points of a pending :answer: line
    lines = text.splitlines()
    i = 0

    def flush_prose():
        nonlocal prose_points
        while prose and not prose[0][1].strip():
            prose.pop(0)
        chunk = '\n'.join(content for _, content in prose).strip('\n')
        if chunk.strip():
            grading = None
            if prose_points is not None:
                grading = Grading('answer', prose_points, chunk)
            items.append(
                Item('markdown', chunk, tab, region=region, line=prose[0][0], grading=grading)
            )
        elif prose_points is not None:
            raise SourceError(f'{name}: an :answer: line must be followed by prose')
        prose_points = None
        prose.clear()

    while i < len(lines):
        line = lines[i]
        where = f'{name}:{i + 1}'
        if _FENCE_OPEN.match(line):
            flush_prose()
            start = i + 1
            i += 1
            while i < len(lines) and not _FENCE_CLOSE.match(lines[i]):
                i += 1
            if i == len(lines):
                raise SourceError(f'{where}: code block is never closed')
            if tab is not None:
                raise SourceError(f'{where}: code blocks cannot sit inside :begin_tab:')
            item = _code_item(lines[start:i], region, where, line=start)
            if course or not (item.grading and item.grading.kind in COURSE_ONLY):
                items.append(item)
        elif m := _PROSE_ANSWER.match(line):
            if not region or region[0] != 'solution':
                raise SourceError(f'{where}: :answer: belongs inside a :begin_solution: region')
            flush_prose()
            prose_points = int(m.group(1))
        elif m := _REGION.match(line):
            flush_prose()
            action, kind, label = m.groups()
            if kind == 'tab':
                if action == 'begin':
                    if label not in FRAMEWORKS:
                        raise SourceError(f'{where}: :begin_tab: takes one of {FRAMEWORKS}')
                    tab = label
                else:
                    tab = None
            elif action == 'begin':
                if region is not None or not label:
                    raise SourceError(f'{where}: :begin_{kind}: needs a label and cannot nest')
                region = (kind, label)
            else:
                if region is None or region[0] != kind:
                    raise SourceError(f'{where}: :end_{kind}: without its begin')
                region = None
        else:
            prose.append((i + 1, line))
        i += 1
    flush_prose()
    if region is not None or tab is not None:
        raise SourceError(f'{name}: an exercise, solution or tab region is never closed')
    return items


_LABEL = re.compile(r'^:label:`([^`]+)`\s*$', re.M)
_HEADING = re.compile(r'^(#+)\s+(.*)$')


def labels(items):
    """Map each `:label:` of a chapter to the title of the heading it follows."""
    found = {}
    for item in items:
        if item.kind != 'markdown':
            continue
        heading = None
        for line in item.text.splitlines():
            if m := _HEADING.match(line):
                heading = m.group(2).strip()
            elif m := _LABEL.match(line):
                found[m.group(1)] = heading
    return found


def title(items):
    """The chapter title: its first level-1 heading."""
    for item in items:
        for line in item.text.splitlines():
            if item.kind == 'markdown' and line.startswith('# '):
                return line[2:].strip()
    raise SourceError('the chapter has no "# title" line')
