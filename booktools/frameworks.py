"""The framework contract, in one place: every module of the build and the benchmark that
needs a framework's name, title, library module or tab key imports it from here."""

#: the frameworks of the book, in tab order
FRAMEWORKS = ('mxnet', 'pytorch')
#: a code block without a ``#@tab`` line belongs to this one (as in the Japanese d2l edition)
DEFAULT_FRAMEWORK = 'mxnet'
TITLES = {'mxnet': 'MXNet', 'pytorch': 'PyTorch'}
#: the learner's library of each framework: ``from d2l_extras import <module> as d2l``
LIBRARY_MODULES = {'mxnet': 'mxnet', 'pytorch': 'torch'}
#: cell metadata key naming the framework of a code cell on a tabbed book page
TAB_METADATA_KEY = 'tab'
#: sphinx-design sync group shared by every framework tab set, so one click switches them all
SYNC_GROUP = 'framework'
