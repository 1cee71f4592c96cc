r"""Comparing activations on equal terms: the same MLP, data, optimiser and seeds, one activation at a time.

Used by the book's chapters "The activation gallery" and "Choosing an activation" and by the FAQ.
:func:`activation_cost` times every activation's forward and backward pass one way, so that every
chapter quotes the same kind of number. One call of
:func:`activation_sweep` trains ``64 -> hidden -> 10`` on the bundled 8x8 digits
(:func:`actgrad.datasets.digits`, one fixed stratified split) with SGD + momentum for every
activation and every seed, and keeps each run's :class:`actgrad.optim.History`.

Fair-comparison rules, as in the literature (e.g. Ramachandran et al., 2017): identical
architecture, data split, optimiser, learning rate, epochs and mini-batch order per seed; only
the activation and its matching initialisation (:data:`DEFAULT_INIT`) change. A single learning
rate for all activations is itself a choice: the best rate differs per activation, so small
differences in the results are not a ranking.
"""
from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np

from . import activations as _A
from . import datasets as _D
from . import init as _I
from . import optim as _O
from .mlp import MLP

__all__ = ["DEFAULT_INIT", "SIGMOID_GAIN", "XAVIER_SIGMOID", "default_init", "SweepResult", "activation_sweep",
           "ActivationCost", "activation_cost"]

#: :math:`1/\sigma'(0)`. Glorot & Bengio's (2010) variance argument treats the activation as the
#: identity near 0 (slope 1, true of tanh); sigmoid's slope there is 1/4, so each layer's backward
#: factor :math:`W^\top \operatorname{diag}(\sigma')` keeps its variance only with weights 4x larger.
SIGMOID_GAIN = 4.0


def _xavier_sigmoid(shape, rng, dtype=np.float64):
    return _I.xavier_uniform(shape, rng, dtype, gain=SIGMOID_GAIN)


#: Glorot uniform with gain :data:`SIGMOID_GAIN` (every layer), zero biases.
XAVIER_SIGMOID = _I.LayerInit("xavier_sigmoid", _xavier_sigmoid, _I.INITIALIZERS["xavier"].bias)

#: The initialisation matched to each activation's slope at 0: Glorot/Xavier (gain 1) for tanh,
#: whose slope there is 1 (Glorot & Bengio, 2010); Xavier with gain 4 for sigmoid (slope 1/4);
#: LeCun normal for SELU (Klambauer et al., 2017); He/Kaiming for the ReLU family and its smooth
#: relatives (He et al., 2015). Others: ``"he"``. Note: ``torch.nn.init.calculate_gain("sigmoid")``
#: returns 1, which is the mis-scaled choice for a sigmoid hidden layer.
DEFAULT_INIT = {"sigmoid": "xavier_sigmoid", "tanh": "xavier", "selu": "lecun", "prelu": "he"}


def default_init(activation: str) -> str:
    """The init name :func:`activation_sweep` uses for ``activation`` (``"he"`` unless listed in
    :data:`DEFAULT_INIT`)."""
    return DEFAULT_INIT.get(activation, "he")


def _layer_init(init):
    return XAVIER_SIGMOID if init == "xavier_sigmoid" else init


class SweepResult(NamedTuple):
    r"""What :func:`activation_sweep` returns.

    ``activations`` and ``seeds``: the grid. ``histories``: name -> list of
    :class:`actgrad.optim.History`, one per seed (per epoch: ``loss``, ``accuracy``,
    ``val_loss``, ``val_accuracy`` on the test split; per step: ``grad_norms`` ``(steps, L)``).
    ``seconds``: name -> total wall-clock seconds of its runs (training only).
    ``init_loss``: name -> array ``(seeds,)``, the training-set loss before the first step
    (about :math:`\ln 10` for a well-scaled net).
    """

    activations: tuple
    seeds: tuple
    histories: dict
    seconds: dict
    init_loss: dict

    def curves(self, field: str = "loss") -> dict:
        """name -> array ``(seeds, epochs)`` of a per-epoch History field (``"loss"``,
        ``"accuracy"``, ``"val_loss"``, ``"val_accuracy"``), ready for
        :func:`actgrad.plotting.plot_training_curves`."""
        if field not in ("loss", "accuracy", "val_loss", "val_accuracy"):
            raise ValueError(f"SweepResult.curves: unknown field {field!r}")
        return {a: np.array([getattr(h, field) for h in hs], dtype=np.float64)
                for a, hs in self.histories.items()}

    def final(self, field: str = "val_accuracy") -> dict:
        """name -> array ``(seeds,)``: the last epoch's value of ``field``."""
        return {a: c[:, -1] for a, c in self.curves(field).items()}

    def best(self, field: str = "val_accuracy") -> dict:
        """name -> array ``(seeds,)``: the best epoch's value of ``field`` (max for accuracies,
        min for losses; NaN epochs ignored)."""
        pick = np.nanmax if "accuracy" in field else np.nanmin
        return {a: pick(c, axis=1) for a, c in self.curves(field).items()}

    def grad_ratio(self) -> dict:
        r"""name -> array ``(seeds,)``: :math:`\overline{\lVert\partial L/\partial W_1\rVert} /
        \overline{\lVert\partial L/\partial W_L\rVert}`, the first layer's mean gradient norm over
        all steps divided by the last layer's. Far below 1 means the first layer barely learns."""
        return {a: np.array([h.grad_norms[:, 0].mean() / h.grad_norms[:, -1].mean() for h in hs])
                for a, hs in self.histories.items()}


def activation_sweep(activations=None, seeds=(0, 1, 2), hidden=(64, 64, 64), epochs=8, lr=0.05,
                     momentum=0.9, batch_size=64, init="auto", data_seed=0, dtype=np.float64):
    r"""Train the same MLP on the digits with each activation and seed; return a :class:`SweepResult`.

    Run ``(a, s)``: ``MLP([64, *hidden, 10], activation=a, init=default_init(a), seed=s)``
    trained by :func:`actgrad.optim.train` with ``SGD(lr, momentum)`` on softmax cross-entropy,
    mini-batches shuffled with ``seed=s``, evaluated on the test split after every epoch.
    ``activations``: names in :data:`actgrad.activations.ACTIVATIONS` or ``"prelu"`` (default: all
    of ACTIVATIONS). ``init``: ``"auto"`` (:func:`default_init`), one init (name, ``LayerInit`` or
    callable) for all, or a dict activation -> init (missing activations: :func:`default_init`).
    Cost: ``len(activations) * len(seeds) * epochs * ceil(1347 / batch_size)`` SGD steps; about
    0.1 s per run at the defaults with one BLAS thread. Pitfall: NaN/inf in a run (divergence) is
    recorded, not raised, so check the curves.
    """
    fn = "activation_sweep"
    names = tuple(_A.ACTIVATIONS) if activations is None else tuple(activations)
    for a in names:
        if a != "prelu" and a not in _A.ACTIVATIONS:
            raise ValueError(f"{fn}: unknown activation {a!r}; known: {sorted(_A.ACTIVATIONS) + ['prelu']}")
    seeds = tuple(int(s) for s in seeds)
    if not names or not seeds:
        raise ValueError(f"{fn}: need at least one activation and one seed, got {names!r}, {seeds!r}")
    hidden = tuple(int(h) for h in hidden)
    data = _D.digits(split=True, test_size=0.25, seed=data_seed)
    histories, seconds, init_loss = {}, {}, {}
    for a in names:
        if isinstance(init, dict):
            scheme = init.get(a, default_init(a))
        else:
            scheme = default_init(a) if isinstance(init, str) and init == "auto" else init
        histories[a], init_loss[a], t0 = [], np.empty(len(seeds)), time.perf_counter()
        for i, s in enumerate(seeds):
            model = MLP([64, *hidden, 10], activation=a, init=_layer_init(scheme), seed=s, dtype=dtype)
            with np.errstate(over="ignore", invalid="ignore"):
                init_loss[a][i] = model.loss(data.X_train, data.y_train)[0]
                h = _O.train(model, data.X_train, data.y_train, _O.SGD(lr, momentum=momentum),
                             epochs=epochs, batch_size=batch_size, seed=s, progress=False,
                             X_val=data.X_test, y_val=data.y_test)
            histories[a].append(h)
        seconds[a] = time.perf_counter() - t0
    return SweepResult(names, seeds, histories, seconds, init_loss)


# ----------------------------------------------------------------------------- cost
class ActivationCost(NamedTuple):
    r"""What :func:`activation_cost` returns.

    ``names``: the activations timed (``"relu"`` always included, as the reference).
    ``seconds``: name -> median CPU seconds (this thread) of one forward + backward pass over the array.
    ``ratio``: name -> ``seconds[name] / seconds["relu"]`` (so ``ratio["relu"] == 1.0``).
    ``samples``: name -> array ``(repeats,)`` of the individual timings (for the spread).
    ``n``, ``repeats``, ``dtype``: the settings used (``dtype`` as a NumPy dtype name).
    """

    names: tuple
    seconds: dict
    ratio: dict
    samples: dict
    n: int
    repeats: int
    dtype: str


def activation_cost(names=None, n=1_000_000, repeats=7, dtype=np.float32, seed=0):
    r"""Time each activation's forward and backward pass on the same array; return an :class:`ActivationCost`.

    One sample of activation :math:`\phi` is the CPU time of the calling thread
    (:func:`time.thread_time`) spent on

    .. math:: a = \phi(z), \qquad g = \delta \odot \phi'(z),

    with :math:`z, \delta \sim \mathcal N(0, 1)^n` drawn once (``seed``) and shared by every
    activation. The activations are timed round-robin (every repeat times each of them once, in
    a rotating order, after one untimed warm-up call each), so load on a shared machine affects
    all of them alike; the reported time is the **median** of ``repeats`` samples and the ratio
    is relative to ReLU's median. BLAS/OpenMP pools are limited to one thread while timing
    (NumPy's elementwise functions are single-threaded anyway). Thread CPU time, unlike wall-clock
    time, is not inflated while other processes hold the CPU, so the ratios stay stable on a busy
    shared machine (contention for memory bandwidth and caches can still shift them a little).

    ``names``: activation names in :data:`actgrad.activations.ACTIVATIONS` (default: all). ``n``:
    array length (>= 1000: shorter arrays measure Python call overhead, not arithmetic).
    ``repeats``: >= 3. ``dtype``: ``np.float32`` (default, what deep-learning frameworks train
    in) or ``np.float64``. Cost: about ``(sum of ratios) * repeats`` ReLU passes, ~1 s at the
    defaults. Pitfall: these are NumPy-on-CPU ratios; GPU frameworks fuse elementwise kernels,
    and next to the layer's matrix product (:math:`O(n\cdot\text{fan-in})`) any activation is cheap.
    """
    fn = "activation_cost"
    if names is None:
        names = tuple(_A.ACTIVATIONS)
    elif isinstance(names, str):
        raise TypeError(f"{fn}: names must be a sequence of activation names, got the string {names!r}")
    else:
        names = tuple(names)
    for a in names:
        if not isinstance(a, str) or a not in _A.ACTIVATIONS:
            raise ValueError(f"{fn}: unknown activation {a!r}; known: {sorted(_A.ACTIVATIONS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{fn}: duplicate names in {names!r}")
    if "relu" not in names:
        names = ("relu",) + names
    for value, label, low in ((n, "n", 1000), (repeats, "repeats", 3)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"{fn}: {label} must be an int >= {low}, got {value!r}")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{fn}: dtype must be np.float32 or np.float64, got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{fn}: dtype must be np.float32 or np.float64, got {dt}")
    n, repeats = int(n), int(repeats)
    rng = np.random.default_rng(seed)
    z, delta = rng.standard_normal(n).astype(dt), rng.standard_normal(n).astype(dt)
    recs = [_A.ACTIVATIONS[a] for a in names]
    samples = {a: np.empty(repeats) for a in names}
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn
    with threadpool_limits(1):
        for rec in recs:  # warm-up: first-call allocations, caches
            _ = delta * rec.prime(z), rec.fn(z)
        for r in range(repeats):
            k = r % len(recs)
            for rec in recs[k:] + recs[:k]:
                t0 = time.thread_time()
                a = rec.fn(z)
                g = delta * rec.prime(z)
                samples[rec.name][r] = time.thread_time() - t0
                del a, g
    seconds = {a: float(np.median(samples[a])) for a in names}
    ratio = {a: seconds[a] / seconds["relu"] for a in names}
    return ActivationCost(names, seconds, ratio, samples, n, repeats, dt.name)
