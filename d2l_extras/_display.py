"""Plots stored as SVG *and* PNG: d2l's ``use_svg_display`` keeps only SVG, which JupyterLab
does not render in a notebook it does not trust (every downloaded notebook); it shows the PNG.

The preambles import this module last; it replaces ``use_svg_display`` in d2l's framework
modules, whose ``Animator``, ``plot`` and ``set_figsize`` look it up there at call time.
"""

import sys

from matplotlib_inline import backend_inline

#: what each plot's output stores, in the order the book's HTML prefers them
PLOT_FORMATS = ('svg', 'png')


def use_svg_display():
    """Store plots as SVG (sharp in the HTML book) and PNG (shown by untrusted notebooks)."""
    backend_inline.set_matplotlib_formats(*PLOT_FORMATS)


for _name in ('d2l.torch', 'd2l.mxnet'):
    if _name in sys.modules:
        sys.modules[_name].use_svg_display = use_svg_display
