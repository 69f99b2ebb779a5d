"""Extract the `#@save` code blocks of the chapters into d2l_extras/{mxnet,torch}.py.

The rule: a code block whose markers include ``#@save`` goes, whole, into the module of each
framework it is shown for, in chapter order. Every top-level function and class gets a
docstring line naming the section it is defined in; other blocks get a comment saying so.

:class:`Package` says which d2l_extras modules a notebook runs against, and a digest of each
that only their code changes (the record that makes stored outputs go stale, book.py).
"""

import ast
import functools
import hashlib
import re

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


# -- What a notebook runs against ----------------------------------------------------------
#
# The outputs of a notebook depend on its code cells and on the d2l_extras modules they use.
# A module counts by its code alone: the digest below is taken over its syntax tree without
# docstrings, so comments, docstrings, formatting and the `# chapters/..., line N` headers
# of the generated modules never make a notebook stale.

PACKAGE = 'd2l_extras'
#: a module named in a string, as a launcher names it: '-m', 'd2l_extras.mx_launch'
_NAMED_IN_TEXT = re.compile(rf'\b{PACKAGE}[./]([A-Za-z_]\w*(?:[./][A-Za-z_]\w*)*)')
_FROM_PACKAGE_IMPORT = re.compile(rf'\bfrom[ \t]+{PACKAGE}[ \t]+import([ \t\w,()]+)')
_DEFINITIONS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _without_docstrings(tree):
    for node in ast.walk(tree):
        if isinstance(node, _DEFINITIONS) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = node.body[1:]
    return tree


def _dump(node):
    """The tree as text, without positions. Unlike ``ast.dump``, empty fields are left out,
    so that a field a newer Python adds (``type_params`` in 3.12) changes nothing."""
    if isinstance(node, ast.AST):
        fields = ','.join(
            f'{name}={_dump(value)}'
            for name, value in ast.iter_fields(node)
            if value is not None and not (isinstance(value, list) and not value)
        )
        return f'{type(node).__name__}({fields})'
    if isinstance(node, list):
        return '[' + ','.join(_dump(value) for value in node) + ']'
    return repr(node)


def digest(text):
    """A short digest of ``text``: enough to tell two versions apart, not a security seal."""
    return 'sha256:' + hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]


def code_digest(code, filename='<code>'):
    """The digest of Python ``code`` by its syntax tree: comments, docstrings and layout
    change nothing."""
    return _read_code(code, filename)[0]


@functools.lru_cache(maxsize=256)
def _read_code(code, filename='<code>'):
    """(digest, references) of ``code``: what :class:`Package` needs of a text, computed
    once per text (a test plans the same tree many times). A reference is ('name', dotted)
    for a module named absolutely (``import d2l_extras.a``, ``'-m', 'd2l_extras.a'``) or
    ('from', level, module, names) for a ``from ... import``."""
    tree = _without_docstrings(ast.parse(code, filename=filename))
    refs = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            refs += [
                ('name', alias.name[len(PACKAGE) + 1 :])
                for alias in node.names
                if alias.name.startswith(PACKAGE + '.')
            ]
        elif isinstance(node, ast.ImportFrom):
            refs.append(('from', node.level, node.module, tuple(a.name for a in node.names)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            refs += [('name', m.group(1)) for m in _NAMED_IN_TEXT.finditer(node.value)]
    return digest(_dump(tree)), tuple(refs)


@functools.lru_cache(maxsize=1024)
def _cell_references(code):
    try:
        return _read_code(code)[1]
    except SyntaxError:  # IPython syntax (%magic, !command): the names it spells out
        names = [m.group(1) for m in _NAMED_IN_TEXT.finditer(code)]
        for m in _FROM_PACKAGE_IMPORT.finditer(code):
            names += re.findall(r'\w+', re.sub(r'\bas[ \t]+\w+', '', m.group(1)))
        return tuple(('name', name) for name in names)


class Package:
    """The modules of ``d2l_extras`` under ``root``, read and digested once each.

    ``texts`` gives the text of some modules instead of their files (the generated modules
    as the sources make them now, before ``sync`` writes them).
    """

    def __init__(self, root, texts=None):
        self.folder = root / PACKAGE
        self.texts = dict(texts or {})
        self._modules = {}

    def path(self, name):
        """The file of module ``name`` ('' is the package itself, 'a.b' a submodule), or
        None when there is no such module."""
        base = self.folder.joinpath(*name.split('.')) if name else self.folder
        for path in (base.with_suffix('.py') if name else None, base / '__init__.py'):
            if path is not None and (name in self.texts or path.is_file()):
                return path
        return None

    def module(self, name):
        """(digest, the package modules it uses) of module ``name``."""
        if name not in self._modules:
            path = self.path(name)
            text = self.texts.get(name)
            if text is None:
                text = path.read_text(encoding='utf-8')
            module_digest, refs = _read_code(text, str(path))
            here = name if path.name == '__init__.py' else name.rpartition('.')[0]
            self._modules[name] = (module_digest, self._resolve(refs, here))
        return self._modules[name]

    def _existing(self, dotted):
        """The longest prefix of ``dotted`` ('checks.py' -> 'checks') that is a module."""
        parts = dotted.replace('/', '.').split('.')
        for end in range(len(parts), 0, -1):
            name = '.'.join(parts[:end])
            if self.path(name):
                return name
        return None

    def _resolve(self, refs, here=''):
        """The package modules that ``refs`` (of :func:`_read_code`) name; ``here`` is the
        package a relative import starts from."""
        found = set()
        for ref in refs:
            if ref[0] == 'name':
                found.add(self._existing(ref[1]))
                continue
            _, level, module, names = ref
            if level:  # relative: only inside the package
                base = here.split('.') if here else []
                base = base[: len(base) - (level - 1)] if level > 1 else base
                module = '.'.join(base + ([module] if module else []))
            elif module == PACKAGE or (module or '').startswith(PACKAGE + '.'):
                module = module[len(PACKAGE) + 1 :]
            else:
                continue
            found.add(self._existing(module) if module else '')
            for alias in names:  # from d2l_extras import torch: a module
                sub = f'{module}.{alias}' if module else alias
                if self.path(sub):
                    found.add(sub)
        return {name for name in found if name is not None}

    def used_by(self, cells):
        """{file relative to the package's parent: digest} of every package module that the
        code ``cells`` use, directly or through other modules (importing ``a.b`` runs the
        package and ``a`` first)."""
        todo = sorted(set().union(*(self._resolve(_cell_references(c)) for c in cells)))
        if todo and self.path(''):
            todo.append('')
        seen = {}
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen[name], uses = self.module(name)
            parents = ['.'.join(name.split('.')[:i]) for i in range(name.count('.') + 1)]
            todo.extend(sorted(n for n in uses | set(parents) if self.path(n)))
        paths = {name: self.path(name).relative_to(self.folder.parent).as_posix() for name in seen}
        return {paths[name]: seen[name] for name in sorted(seen, key=paths.get)}
