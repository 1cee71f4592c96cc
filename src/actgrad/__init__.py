"""actgrad: activation functions and gradient flow, in NumPy.

The package behind the course *Activation functions and gradient flow*. Its functional core
(:mod:`actgrad.activations`, :mod:`actgrad.losses`) pairs every forward function with its
derivative; :mod:`actgrad.layers` wraps them as layers with a forward/backward pair each (affine,
activation, residual connection; the normalisation layers, batch and layer norm, are in
:mod:`actgrad.normalization`), from which :mod:`actgrad.mlp` builds a from-scratch multilayer
perceptron; :mod:`actgrad.rnn` adds a tanh RNN and an LSTM with backpropagation through time. The
remaining modules train the networks, check their gradients, diagnose gradient flow and plot the
results. Every result is tested against PyTorch autograd in float64.
"""
import importlib

from . import activations, losses, init, layers, normalization, mlp, rnn, optim, gradcheck, diagnostics
from .activations import ACTIVATIONS
from .mlp import MLP

# Imported on first use (``actgrad.plotting`` or ``from actgrad import plotting``): matplotlib and
# the book's experiments are not needed to compute anything, and grading imports actgrad often.
_LAZY = ("plotting", "datasets", "experiments", "compare", "adaptive")


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'actgrad' has no attribute {name!r}")

__version__ = "0.1.0"
__all__ = [
    "activations", "losses", "init", "layers", "normalization", "mlp", "rnn", "optim", "gradcheck",
    "diagnostics", "plotting", "datasets", "experiments", "compare", "adaptive", "ACTIVATIONS", "MLP",
]
