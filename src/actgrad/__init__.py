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
from . import (activations, losses, init, layers, normalization, mlp, rnn, optim, gradcheck, diagnostics,
               plotting, datasets, experiments, compare, adaptive)
from .activations import ACTIVATIONS
from .mlp import MLP

__version__ = "0.1.0"
__all__ = [
    "activations", "losses", "init", "layers", "normalization", "mlp", "rnn", "optim", "gradcheck",
    "diagnostics", "plotting", "datasets", "experiments", "compare", "adaptive", "ACTIVATIONS", "MLP",
]
