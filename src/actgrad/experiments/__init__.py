r"""The book's experiments, one module per chapter, as seeded, vectorised functions.

Each function returns a :class:`typing.NamedTuple` of NumPy arrays, so a chapter can plot it (and
show its source next to the call) and the tests can assert the chapter's conclusions on it across
seeds, against independent oracles (PyTorch autograd, published constants, closed forms). These
modules serve the chapters; the API that students read is in ``activations``, ``losses``,
``layers``, ``mlp`` and the rest.

* :mod:`.depth` (chapters "Vanishing and exploding gradients" and "Initialization") - gradient
  norms layer by layer through a deep MLP (Glorot & Bengio, 2010); Nielsen's (2015, ch. 5)
  per-layer speed of learning on the bundled digits.
* :mod:`.selu` (chapter "Initialization") - SELU's :math:`(\alpha, \lambda)` from its fixed point
  (Klambauer et al., 2017).
* :mod:`.dead` (chapter "Dead neurons") - dead and inactive units per layer during training, over
  seeds at once.
* :mod:`.clipping` (chapter "Exploding gradients and clipping") - SGD with optional clipping and
  weight decay, recording raw gradient norms, when clipping was active, and the size of every update.
* :mod:`.normalization` (chapter "Normalization and residual connections") - deep nets with
  BatchNorm, LayerNorm and residual blocks.
* :mod:`.through_time` (chapter "Gradients through time") - tanh RNN and LSTM on a long-dependency
  recall task.
* :mod:`.outlook` (chapter "Outlook: adaptive activation functions") - learnable PReLU slopes and
  Swish's beta.

:func:`diverged` is the book's one divergence rule (a non-finite loss, or one above
``DIVERGENCE_FACTOR`` times :math:`\ln K`); :func:`glue_value` and :func:`glue_range` hand computed
numbers to a chapter's prose.
"""
from .depth import *  # noqa: F401,F403
from .selu import *  # noqa: F401,F403
from .dead import *  # noqa: F401,F403
from .clipping import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .through_time import *  # noqa: F401,F403
from .outlook import *  # noqa: F401,F403
from . import depth, selu, dead, clipping, normalization, through_time, outlook  # noqa: F401
from ._common import _resolve_init, DIVERGENCE_FACTOR, diverged, glue_range, glue_value, over_seeds  # noqa: F401
