"""Turn the d2lbook roles of chapter prose into MyST (for the book) or plain Markdown
(for notebooks opened in JupyterLab)."""

import re

_LABEL_LINE = re.compile(r'^:label:`([^`]+)`\s*$')
_NUMREF = re.compile(r':numref:`([^`]+)`')
_CITE = re.compile(r':cite:`([^`]+)`')
# A folded column: a MyST dropdown admonition (the book shows it as is)
_DROPDOWN = re.compile(
    r'^:::\{admonition\} (?P<title>.+)\n:class: dropdown\n(?P<body>.*?)\n:::$', re.M | re.S
)


class UnknownLabel(KeyError):
    """A :numref: to a label that no chapter defines."""


def _move_labels_above_headings(lines, make_target):
    """d2lbook puts `:label:` under its heading; MyST wants the target above it."""
    out = []
    for line in lines:
        m = _LABEL_LINE.match(line)
        if not m:
            out.append(line)
            continue
        target = make_target(m.group(1))
        # Find the heading this label belongs to (the last non-blank line emitted).
        j = len(out) - 1
        while j >= 0 and not out[j].strip():
            j -= 1
        if target is None:
            continue
        if j >= 0 and out[j].startswith('#'):
            out.insert(j, target)
        else:
            out.append(target)
    return out


def to_myst(text, known_labels):
    """d2lbook markdown prose -> MyST for Jupyter Book."""

    def numref(m):
        label = m.group(1)
        if label not in known_labels:
            raise UnknownLabel(
                f':numref:`{label}` names no label of the book; link to an '
                'outside page with a normal Markdown link instead'
            )
        return f'{{numref}}`{label}`'

    lines = _move_labels_above_headings(text.splitlines(), lambda label: f'({label})=')
    text = '\n'.join(lines)
    text = _NUMREF.sub(numref, text)
    return _CITE.sub(lambda m: f'{{cite:p}}`{m.group(1)}`', text)


def cite_text(keys):
    """'Devlin.Chang.Lee.ea.2018' -> 'Devlin et al., 2018' (d2l's bib keys carry both)."""
    parts = []
    for key in keys.split(','):
        *names, year = key.strip().split('.')
        if len(names) > 2 or 'ea' in names:
            authors = f'{names[0]} et al.'
        elif len(names) == 2:
            authors = f'{names[0]} and {names[1]}'
        else:
            authors = names[0]
        parts.append(f'{authors}, {year}')
    return '(' + '; '.join(parts) + ')'


def to_notebook_markdown(text, known_labels):
    """d2lbook markdown prose -> plain Markdown that JupyterLab renders.

    ``known_labels`` maps a label to (notebook file name, title).
    """

    def numref(m):
        label = m.group(1)
        if label not in known_labels:
            raise UnknownLabel(f':numref:`{label}` names no label of the book')
        notebook, heading = known_labels[label]
        heading = heading or label
        # JupyterLab's id of a heading is its text with spaces as hyphens; <...> lets the
        # link target hold any character
        return f'[{heading}](<{notebook}#{heading.replace(" ", "-")}>)'

    lines = _move_labels_above_headings(text.splitlines(), lambda label: None)
    text = '\n'.join(lines)
    text = _NUMREF.sub(numref, text)
    # JupyterLab knows no MyST directives; HTML <details> folds the same way there
    text = _DROPDOWN.sub(
        lambda m: (
            f'<details>\n<summary><strong>{m["title"]}</strong></summary>\n'
            f'{m["body"]}\n\n</details>'
        ),
        text,
    )
    return _CITE.sub(lambda m: cite_text(m.group(1)), text)
