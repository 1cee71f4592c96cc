"""actgrad: activation functions and gradient flow, in NumPy.

The package behind the course *Activation functions and gradient flow*. Its functional core
(:mod:`actgrad.activations`, :mod:`actgrad.losses`) pairs every forward function with its
derivative; :mod:`actgrad.mlp` builds a from-scratch multilayer perceptron on top, and the
remaining modules train it, check its gradients, diagnose gradient flow and plot the results.
Every result is tested against PyTorch autograd in float64.
"""
from . import activations, losses, init, mlp, optim, gradcheck, diagnostics, plotting, datasets, experiments, compare, adaptive
from .activations import ACTIVATIONS
from .mlp import MLP

__version__ = "0.1.0"
__all__ = [
    "activations", "losses", "init", "mlp", "optim", "gradcheck", "diagnostics", "plotting",
    "datasets", "experiments", "compare", "adaptive", "ACTIVATIONS", "MLP",
]
