"""Extract the `#@save` code blocks of the chapters into d2l_extras/{mxnet,torch}.py.

The rule: a code block whose markers include ``#@save`` goes, whole, into the module of each
framework it is shown for, in chapter order. Every top-level function and class gets a
docstring line naming the section it is defined in; other blocks get a comment saying so.
"""

import ast

from .frameworks import LIBRARY_MODULES


def _with_section_docstrings(code, label):
    """Give each top-level def/class of ``code`` a docstring line naming ``label``."""
    note = f'Defined in :numref:`{label}`.'
    lines = code.splitlines()
    inserts = []  # (line index, text) applied bottom-up so indices stay valid
    for node in ast.parse(code).body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        first = node.body[0]
        indent = ' ' * first.col_offset
        has_doc = (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        )
        if has_doc:
            # Add the note as the docstring's last paragraph, before its closing quotes.
            end = first.end_lineno - 1
            closing = lines[end].rstrip()
            quotes = closing[-3:]
            if quotes not in ('"""', "'''"):
                raise ValueError(f'{node.name}: write the docstring with triple quotes')
            body = closing[:-3]
            if body.strip():  # one-line docstring: """Text."""
                lines[end] = f'{body}\n\n{indent}{note}\n{indent}{quotes}'
            else:
                lines[end] = f'\n{indent}{note}\n{closing}'
        else:
            # Right under the signature: skip back over comments above the first statement.
            header_end = first.lineno - 2
            while lines[header_end].strip() == '' or lines[header_end].lstrip().startswith('#'):
                header_end -= 1
            inserts.append((header_end + 1, f'{indent}"""{note}"""'))
    for index, text in sorted(inserts, reverse=True):
        lines.insert(index, text)
    return '\n'.join(lines)


def module_text(framework, chapters):
    """The d2l_extras module of one framework.

    ``chapters`` is a list of (source path, label, items) in book order. The module starts
    with ``d2l_extras._<module>_preamble`` (hand-written: imports and runtime settings), and
    each block names the chapter file and line it comes from.
    """
    module = LIBRARY_MODULES[framework]
    sources = ', '.join(path for path, _, _ in chapters)
    parts = [
        f'''"""The BERT chapters' `#@save` code for {module}, with d2l 1.0.3's utilities.

Generated from {sources} by `python -m booktools sync`: edit the chapters, not this file.
Use it as `from d2l_extras import {module} as d2l`.
"""
from d2l_extras._{module}_preamble import *  # noqa: F403 -- imports and runtime settings

d2l = sys.modules[__name__]  # noqa: F405 -- chapter code calls d2l.<name>
'''
    ]
    for path, label, items in chapters:
        for item in items:
            if not (item.kind == 'code' and item.save and framework in item.frameworks()):
                continue
            # Readers see the #@save markers in the notebook; the module needs none.
            code = '\n'.join(
                line for line in item.text.splitlines() if line.strip() != '#@save'
            ).strip('\n')
            tree = ast.parse(code)
            where = f'# {path}, line {item.line}'
            if any(
                isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                for n in tree.body
            ):
                parts.append(f'{where}\n{_with_section_docstrings(code, label)}\n')
            else:
                parts.append(f'{where} (:numref:`{label}`)\n{code}\n')
    # Argument checks, kept out of the chapters' code (see d2l_extras/checks.py)
    parts.append(
        f'from d2l_extras.checks import apply_checks  # noqa: E402\n'
        f"apply_checks(globals(), '{module}')\n"
    )
    return '\n\n'.join(parts)
