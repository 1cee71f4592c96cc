"""Helpers shared by the book's experiment modules (argument checks, data split, metrics)."""
from __future__ import annotations

import functools
import math

import numpy as np

from .. import activations as _A
from .. import datasets as _D
from .. import init as _I

def _resolve_init(init, fn):
    """A name, a LayerInit/callable, or a float ``std`` (plain N(0, std^2) weights)."""
    if isinstance(init, (int, float)) and not isinstance(init, bool):
        if not init > 0:
            raise ValueError(f"{fn}: a numeric init is a weight std and must be > 0, got {init!r}")
        return functools.partial(_I.normal, std=float(init))
    if isinstance(init, str) or callable(init):
        return init
    raise TypeError(f"{fn}: init must be a name, a callable or a float std, got {type(init).__name__}")


def _check_pos_int(value, name, fn, minimum=1):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{fn}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _activation(name, fn):
    if name not in _A.ACTIVATIONS:
        raise ValueError(f"{fn}: unknown activation {name!r}; known: {sorted(_A.ACTIVATIONS)}")
    return _A.ACTIVATIONS[name]


def _digits_split(seed):
    return _D.digits(split=True, test_size=0.25, seed=seed)


def _accuracy(model, X, y):
    with np.errstate(all="ignore"):
        return float(np.mean(model.predict(X) == y))


def _total_norm(grads):
    return math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))




# ============================================================================ divergence and seeds
#: A run is *diverged* when its training loss is non-finite or exceeds this many times the loss of
#: a uniform guess, ln(n_classes) (ln 10 = 2.30 on the digits). Chapters state this rule.
DIVERGENCE_FACTOR = 10.0


def diverged(loss, n_classes=10, factor=DIVERGENCE_FACTOR):
    r"""True if a training run diverged: any loss is non-finite or above ``factor`` :math:`\ln K`.

    ``loss``: array-like of recorded losses (any shape; NaN entries after a stop count as
    non-finite). The threshold :math:`10 \ln K` is ten times the cross-entropy of a uniform
    prediction over :math:`K` classes: no run that is still learning gets there.
    """
    loss = np.asarray(loss, dtype=np.float64)
    return bool(np.any(~np.isfinite(loss)) or np.any(loss > factor * math.log(n_classes)))


def over_seeds(fn, seeds, **kwargs):
    """``[fn(seed=s, **kwargs) for s in seeds]``: one call per seed (the multi-seed convention)."""
    seeds = list(seeds)
    if len(seeds) < 1:
        raise ValueError("over_seeds: give at least one seed")
    return [fn(seed=s, **kwargs) for s in seeds]


# ============================================================================ numbers for the prose
def glue_value(name, value, fmt=float):
    """Hand ``fmt(value)`` to the chapter's prose as ``{glue:text}`name``` (myst-nb's ``glue``, not
    displayed in the cell). ``fmt``: ``float`` (default) or ``int``, so NumPy scalars become plain numbers."""
    from myst_nb import glue
    glue(name, fmt(value), display=False)


def glue_range(name, values, fmt=float):
    """Glue the smallest and the largest of ``values`` (any shape) as ``<name>_lo`` and ``<name>_hi``."""
    glue_value(name + "_lo", np.min(values), fmt)
    glue_value(name + "_hi", np.max(values), fmt)
