"""``d2l.Animator`` with the same interface, but cheap enough to call on every training step.

d2l 1.0.3's Animator clears the axes, plots every line again and renders the whole figure on
every ``add``: about 90 ms per step on a 2-core CPU, time that the training loop waits for. This
one moves the existing lines (``set_data``) on every ``add``, and shows the figure at most every
``min_interval`` seconds (longer when rendering itself is slow) and on the last step of
``xlim``. The lines always hold every point, so the figure that the notebook shows when the cell
ends (matplotlib's inline backend shows open figures then) is the final state.
The preambles (``_mxnet_preamble``, ``_torch_preamble``) install it as ``d2l.Animator``.
"""

import time

from IPython import display, get_ipython
from matplotlib import pyplot as plt

from d2l_extras._display import use_svg_display  # SVG and PNG


# d2l's own helper, here so that the MXNet book does not import d2l.torch (and torch)
def set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend):
    """Set the axes for matplotlib (as d2l.set_axes)."""
    axes.set_xlabel(xlabel), axes.set_ylabel(ylabel)
    axes.set_xscale(xscale), axes.set_yscale(yscale)
    axes.set_xlim(xlim), axes.set_ylim(ylim)
    if legend:
        axes.legend(legend)
    axes.grid()


class Animator:
    """For plotting data in animation: d2l.Animator's arguments and ``add(x, y)``."""

    def __init__(
        self,
        xlabel=None,
        ylabel=None,
        legend=None,
        xlim=None,
        ylim=None,
        xscale='linear',
        yscale='linear',
        fmts=('-', 'm--', 'g-.', 'r:'),
        nrows=1,
        ncols=1,
        figsize=(3.5, 2.5),
        min_interval=0.5,
    ):
        legend = [] if legend is None else legend
        use_svg_display()
        self.fig, self.axes = plt.subplots(nrows, ncols, figsize=figsize)
        if nrows * ncols == 1:
            self.axes = [self.axes]
        self.xlim, self.ylim, self.legend = xlim, ylim, legend
        self.config_axes = lambda: set_axes(
            self.axes[0], xlabel, ylabel, xlim, ylim, xscale, yscale, legend
        )
        self.X, self.Y, self.fmts = None, None, fmts
        self.lines = []
        self.min_interval = min_interval
        self._next_show = 0.0  # time.monotonic() after which add() may show the figure again

    def add(self, x, y):
        # Add multiple data points into the figure
        if not hasattr(y, '__len__'):
            y = [y]
        n = len(y)
        if not hasattr(x, '__len__'):
            x = [x] * n
        if not self.X:
            self.X = [[] for _ in range(n)]
        if not self.Y:
            self.Y = [[] for _ in range(n)]
        for i, (a, b) in enumerate(zip(x, y)):
            if a is not None and b is not None:
                self.X[i].append(a)
                self.Y[i].append(float(b))
        self._update_lines()
        last_step = self.xlim is not None and max(x) >= self.xlim[1]
        if last_step or time.monotonic() >= self._next_show:
            self.show()

    def _update_lines(self):
        ax = self.axes[0]
        if not self.lines:  # The first point: make the lines and the axes once
            self.lines = [ax.plot(x, y, fmt)[0] for x, y, fmt in zip(self.X, self.Y, self.fmts)]
            self.config_axes()
            # set_axes fixed the limits; the ones not given follow the data, as in d2l's
            ax.set_autoscalex_on(self.xlim is None)
            ax.set_autoscaley_on(self.ylim is None)
        for line, x, y in zip(self.lines, self.X, self.Y):
            line.set_data(x, y)
        ax.relim()
        ax.autoscale_view()

    def show(self):
        """Show the figure now (in a notebook; scripts save it with ``self.fig.savefig``)."""
        start = time.monotonic()
        # A notebook kernel; set_matplotlib_formats makes a bare shell even in a script
        if getattr(get_ipython(), 'kernel', None) is not None:
            display.display(self.fig)
            display.clear_output(wait=True)
        # Rendering slower than min_interval / 5 waits longer, so it costs at most ~20 %
        took = time.monotonic() - start
        self._next_show = time.monotonic() + max(self.min_interval, 5 * took)
