"""What ``d2l_extras.mxnet`` runs before the chapters' code: the imports that code uses, and
MXNet's thread count, which MXNet fixes once, when it is imported (see sec_bert)."""

import collections  # noqa: F401 -- the chapters' code uses these through the star import
import math  # noqa: F401
import os
import random  # noqa: F401
import sys  # noqa: F401

import psutil


def _physical_cores_usable():
    """Physical cores, capped at the CPUs this process may use (containers, taskset)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    return min(psutil.cpu_count(logical=False) or 1, usable)


# On x86, MXNet takes half the logical CPUs (it assumes hyper-threading): one thread on a
# 2-core machine without it. A value the user set wins.
os.environ.setdefault('OMP_NUM_THREADS', str(_physical_cores_usable()))

from d2l.mxnet import *  # noqa: E402,F401,F403 -- d2l 1.0.3's general utilities (Timer, ...)
from mxnet import autograd, gluon, init, np, npx  # noqa: E402,F401
from mxnet.gluon import nn  # noqa: E402,F401

npx.set_np()
from d2l_extras._display import use_svg_display  # noqa: E402,F401 -- SVG and PNG plots
from d2l_extras.animator import Animator  # noqa: E402,F401 -- replaces d2l's, same interface
