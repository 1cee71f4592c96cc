r"""The gradient-flow experiments of the book's chapters 7-10, as seeded, vectorised functions.

Each function returns a :class:`typing.NamedTuple` of NumPy arrays, so a chapter can plot it and
``tests/test_experiments.py`` can assert on it against independent oracles (PyTorch autograd,
published constants, closed forms).

* :func:`gradient_norms_by_depth` - one forward/backward pass through a deep square MLP: the
  product of Jacobians, layer by layer (Glorot & Bengio, 2010).
* :func:`nielsen_speed_of_learning` - Nielsen's (2015, ch. 5) per-layer "speed of learning"
  :math:`\lVert \partial C/\partial b^l \rVert` of sigmoid nets on the bundled 8x8 digits.
* :func:`selu_moments`, :func:`selu_fixed_point` - SELU's :math:`(\alpha, \lambda)` from the
  fixed point mean 0 / variance 1 (Klambauer et al., 2017).
* :func:`dead_fraction_during_training` - dead ReLU units per layer, epoch by epoch.
* :func:`train_with_clipping` - plain SGD with optional norm/value clipping and weight decay,
  recording the gradient norm before clipping and the size of every update.
"""
# One module per chapter; each defines ``__all__``. Per-chapter code lives here, not in the API
# modules (activations, losses, mlp, ...), and the chapters show each function's source.
from .depth import *  # noqa: F401,F403
from .selu import *  # noqa: F401,F403
from .dead import *  # noqa: F401,F403
from .clipping import *  # noqa: F401,F403
from . import depth, selu, dead, clipping  # noqa: F401
from ._common import _resolve_init, DIVERGENCE_FACTOR, diverged, over_seeds  # noqa: F401
