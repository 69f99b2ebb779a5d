"""What ``d2l_extras.torch`` runs before the chapters' code: the imports that code uses."""

import collections  # noqa: F401 -- the chapters' code uses these through the star import
import math  # noqa: F401
import os  # noqa: F401
import random  # noqa: F401
import sys  # noqa: F401

import numpy as np  # noqa: F401
import torch  # noqa: F401
from d2l.torch import *  # noqa: F401,F403 -- d2l 1.0.3's general utilities (Timer, Vocab, ...)
from torch import nn  # noqa: F401
from torch.nn import functional as F  # noqa: F401

from d2l_extras._display import use_svg_display  # noqa: E402,F401 -- SVG and PNG plots
from d2l_extras.animator import Animator  # noqa: E402,F401 -- replaces d2l's, same interface
