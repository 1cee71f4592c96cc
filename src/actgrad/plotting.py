r"""Plots for the course, with one palette.

Every activation has a fixed colour (:data:`PALETTE`), so ReLU is the same green in every chapter;
other series cycle through :data:`COLORS`; layers are coloured by depth with :func:`depth_colors`.
Call :func:`use_style` once per notebook (or wrap code in ``with style():``).

Every ``plot_*`` function takes an optional ``ax`` (a new figure is made when it is None) and
returns the Axes it drew on, so calls compose::

    ax = plot_activation("tanh")
    plot_activation("sigmoid", ax=ax)

Layout: constants and style; helpers; one section per kind of plot. New helpers go at the end,
in their own section, taking ``ax=None`` and returning the Axes.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import matplotlib as mpl
import matplotlib.pyplot as plt
from cycler import cycler

__all__ = ["PALETTE", "COLORS", "DEPTH_CMAP", "STYLE", "use_style", "style", "color_for",
           "depth_colors", "subplots", "smallest_text_px", "COLUMN_PX", "PHONE_PX", "MIN_TEXT_PX",
           "FIG_WIDTH", "MAX_COLUMNS", "plot_activation", "plot_activations_grid", "plot_layer_histograms",
           "plot_grad_norms_vs_depth", "plot_decision_boundary", "plot_training_curves",
           "plot_matrix"]

# ----------------------------------------------------------------------------- palette & style
#: One colour per activation, for every figure of the course (Okabe-Ito based, colour-blind safe
#: for the first eight; the ReLU family shares greens/blues, the smooth ReLUs warm tones).
PALETTE = {
    "sigmoid": "#0072B2",     # blue
    "tanh": "#D55E00",        # vermillion
    "relu": "#009E73",        # bluish green
    "leaky_relu": "#56B4E9",  # sky blue
    "prelu": "#332288",       # indigo
    "elu": "#E69F00",         # orange
    "selu": "#CC79A7",        # reddish purple
    "gelu": "#882255",        # wine
    "silu": "#999933",        # olive
    "softplus": "#8C564B",    # brown
    "mish": "#44AA99",        # teal
    "linear": "#555555",      # grey
}
#: Colour cycle for series that are not activations (seeds, configurations, classes).
COLORS = ["#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#882255",
          "#999933", "#332288", "#555555"]
#: Sequential colormap for depth (first layer dark, last layer light).
DEPTH_CMAP = "viridis"

#: Readability contract. A figure is shown at most COLUMN_PX CSS pixels wide (the book's figure
#: column in a 1280-px window) and, on a phone, PHONE_PX wide (book/_static/site.css keeps plots at
#: that width in a sideways-scrolling box). At either width the smallest text of a figure made
#: with STYLE (and these helpers) is at least MIN_TEXT_PX CSS pixels: 11 pt in a FIG_WIDTH-inch
#: figure is 14.7 px in the column and 12.2 px on a phone. Wider figures shrink their text: keep
#: figures FIG_WIDTH wide and put at most MAX_COLUMNS panels side by side (:func:`subplots`).
COLUMN_PX, PHONE_PX, MIN_TEXT_PX = 672, 560, 12.0
FIG_WIDTH, MAX_COLUMNS = 7.0, 2

STYLE = {
    "figure.figsize": (FIG_WIDTH, 4.2), "figure.dpi": 110, "savefig.dpi": 150,
    "savefig.bbox": "tight", "savefig.pad_inches": 0.05, "font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11,
    "xtick.labelsize": 11, "ytick.labelsize": 11, "legend.fontsize": 11, "legend.title_fontsize": 11,
    "figure.titlesize": 12, "legend.frameon": False, "axes.grid": True, "grid.alpha": 0.3,
    "grid.linewidth": 0.8, "axes.spines.top": False, "axes.spines.right": False,
    "lines.linewidth": 2.0, "axes.prop_cycle": cycler(color=COLORS), "image.cmap": "viridis",
}


def use_style():
    """Apply :data:`STYLE` (readable fonts, light grid, the :data:`COLORS` cycle) globally."""
    mpl.rcParams.update(STYLE)


def style():
    """Context manager applying :data:`STYLE` temporarily: ``with style(): ...``."""
    return mpl.rc_context(STYLE)


def color_for(name, index=0):
    """The palette colour of activation ``name``, else ``COLORS[index % len(COLORS)]``."""
    return PALETTE.get(name, COLORS[index % len(COLORS)]) if isinstance(name, str) \
        else COLORS[index % len(COLORS)]


def depth_colors(n):
    """``n`` colours sampled from :data:`DEPTH_CMAP`, dark (layer 1) to light (layer n)."""
    return [mpl.colormaps[DEPTH_CMAP](t) for t in np.linspace(0.0, 0.85, max(int(n), 1))][:n]


def subplots(n, ncols=MAX_COLUMNS, panel_height=2.8, **kw):
    """``(fig, axes)``: ``n`` panels in rows of at most ``min(ncols, MAX_COLUMNS)``, the figure
    FIG_WIDTH wide (readable on every screen, see :data:`MIN_TEXT_PX`); ``axes`` is 1-D, unused
    grid cells removed. ``kw`` goes to ``plt.subplots`` (e.g. ``sharey=True``)."""
    if int(n) < 1:
        raise ValueError(f"subplots: need at least one panel, got n={n}")
    ncols = max(1, min(int(ncols), MAX_COLUMNS, int(n)))
    nrows = -(-int(n) // ncols)
    kw.setdefault("layout", "constrained")
    fig, axes = plt.subplots(nrows, ncols, figsize=(FIG_WIDTH, panel_height * nrows), squeeze=False, **kw)
    axes = axes.ravel()
    for ax in axes[n:]:
        fig.delaxes(ax)
    return fig, axes[:n]


def smallest_text_px(fig, width_px=COLUMN_PX):
    r"""Size in CSS px of the smallest visible text of ``fig`` when the page shows it ``width_px``
    wide: :math:`s_{\min}\,\frac{d}{72}\,\min\!\left(1, \frac{W}{w\,d}\right)` for the smallest
    font size :math:`s_{\min}` (pt), ``fig.dpi`` :math:`d`, figure width :math:`w` (in) and shown
    width :math:`W` (px); a browser never enlarges an image beyond its natural size. Texts that
    appear only when the figure is drawn (tick labels) count once it has been drawn."""
    sizes = [t.get_fontsize() for t in fig.findobj(mpl.text.Text) if t.get_visible() and t.get_text()]
    natural = fig.get_figwidth() * fig.dpi
    return min(sizes, default=np.inf) * fig.dpi / 72 * min(1.0, width_px / natural)


# ----------------------------------------------------------------------------- helpers
def _axes(ax, fn):
    if ax is None:
        return plt.subplots()[1]
    if not isinstance(ax, mpl.axes.Axes):
        raise TypeError(f"{fn}: ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    return ax


def _label_axes(ax, xlabel, ylabel, title=None):
    if xlabel is not None and not ax.get_xlabel():
        ax.set_xlabel(xlabel)
    if ylabel is not None and not ax.get_ylabel():
        ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)


def _mean_band(ax, x, Y, color, label, band, **line_kw):
    """Plot ``Y`` (steps,) as a line, or (runs, steps) as the mean and a shaded band."""
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        return ax.plot(x, Y, color=color, label=label, **line_kw)
    if Y.ndim != 2 or Y.shape[0] == 0:
        raise ValueError(f"expected a 1-D curve or a 2-D (runs, steps) array, got {Y.shape}")
    mean = Y.mean(axis=0)
    line = ax.plot(x, mean, color=color, label=label, **line_kw)
    if band is not None and Y.shape[0] > 1:
        if band == "std":
            lo, hi = mean - Y.std(axis=0), mean + Y.std(axis=0)
        elif band == "sem":
            s = Y.std(axis=0, ddof=1) / np.sqrt(Y.shape[0])
            lo, hi = mean - s, mean + s
        elif band == "minmax":
            lo, hi = Y.min(axis=0), Y.max(axis=0)
        else:
            raise ValueError(f"band must be 'std', 'sem', 'minmax' or None, got {band!r}")
        ax.fill_between(x, lo, hi, color=color, alpha=0.2, linewidth=0)
    return line


def _break_jumps(x, y, frac=0.1):
    """Insert NaN inside isolated jumps of ``y`` so a step (ReLU' at 0) is not drawn as a
    vertical segment. A jump: ``|dy| > frac * ptp(y)`` and > 10x both neighbouring steps."""
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or y.size < 3 or not np.isfinite(y).all():
        return x, y
    d = np.abs(np.diff(y))
    nb = np.maximum(np.r_[0.0, d[:-1]], np.r_[d[1:], 0.0])
    idx = np.flatnonzero((d > frac * np.ptp(y)) & (d > 10 * nb)) + 1
    return np.insert(x, idx, (x[idx - 1] + x[idx]) / 2), np.insert(y, idx, np.nan)


def _resolve_fns(spec):
    """``(label, fn, prime_or_None, colour_key)`` from a name, a record or a tuple of callables."""
    if isinstance(spec, str):
        if spec in ("linear", "identity"):
            return "linear", (lambda x: x), (lambda x: np.ones_like(x)), "linear"
        from .activations import ACTIVATIONS

        if spec not in ACTIVATIONS:
            raise ValueError(f"plot_activation: unknown activation {spec!r}; "
                             f"known: {sorted(ACTIVATIONS)}")
        spec = ACTIVATIONS[spec]
    if hasattr(spec, "fn"):
        name = getattr(spec, "name", "f")
        return name, spec.fn, getattr(spec, "prime", None), name
    if callable(spec):
        return getattr(spec, "__name__", "f"), spec, None, None
    if isinstance(spec, (tuple, list)) and 1 <= len(spec) <= 2 and all(map(callable, spec)):
        return getattr(spec[0], "__name__", "f"), spec[0], (spec[1] if len(spec) == 2 else None), \
            getattr(spec[0], "__name__", None)
    raise TypeError(f"plot_activation: expected a name, a record with .fn/.prime, a callable "
                    f"or (fn, prime), got {type(spec).__name__}")


# ----------------------------------------------------------------------------- activations
def plot_activation(name_or_fns, x=None, ax=None, derivative=True, label=None, color=None):
    r"""Plot an activation :math:`f` (solid) and its derivative :math:`f'` (dashed, same colour).

    ``name_or_fns``: a name from ``ACTIVATIONS`` (or ``"linear"``), a record with ``.fn`` and
    ``.prime``, a callable, or a ``(fn, prime)`` pair. ``x``: 1-D grid, default 501 points on
    [-5, 5]. The colour is ``PALETTE[name]`` unless ``color`` is given. Draws 2 lines (1 with
    ``derivative=False`` or no derivative known) labelled ``name`` and ``name'``; a jump of the
    derivative (ReLU, leaky ReLU, SELU at 0) is left as a gap (a NaN point), not a vertical
    segment that would suggest intermediate values.
    """
    ax = _axes(ax, "plot_activation")
    name, fn, prime, key = _resolve_fns(name_or_fns)
    label = name if label is None else label
    x = np.linspace(-5.0, 5.0, 501) if x is None else np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"plot_activation: x must be 1-D, got shape {x.shape}")
    color = color or color_for(key, len(ax.get_lines()) // 2)
    ax.plot(x, fn(x), color=color, label=label)
    if derivative and prime is not None:
        ax.plot(*_break_jumps(x, prime(x)), color=color, linestyle="--", label=f"{label}'")
    _label_axes(ax, "$x$", "$f(x)$, $f'(x)$")
    ax.legend()
    return ax


def plot_activations_grid(names, x=None, ncols=MAX_COLUMNS, derivative=True, sharey=False,
                          figsize=None):
    """A grid of :func:`plot_activation` panels, one per name (titled), in rows of at most
    :data:`MAX_COLUMNS` panels (a larger ``ncols`` is capped, so the text stays readable on a
    phone; ``figsize`` overrides the readable default size). Returns ``(fig, axes)`` with ``axes``
    a 1-D array of ``len(names)`` Axes."""
    names = list(names)
    if not names:
        raise ValueError("plot_activations_grid: names is empty")
    fig, axes = subplots(len(names), ncols=ncols, sharey=sharey)
    if figsize is not None:
        fig.set_size_inches(figsize)
    for ax, name in zip(axes, names):
        plot_activation(name, x=x, ax=ax, derivative=derivative)
        ax.set_title(name if isinstance(name, str) else getattr(name, "name", ""))
    return fig, axes


# ----------------------------------------------------------------------------- per-layer views
def plot_layer_histograms(values_per_layer, ax=None, labels=None, bins=50, range=None,
                          density=True, xlabel="value", layout="overlay"):
    r"""Histograms of a quantity per layer (activations, pre-activations, gradients), as in
    Glorot & Bengio (2010), Figs. 6-7.

    ``values_per_layer``: a list of arrays (any shape, flattened) or a dict label -> array.
    All layers share the same bins (``range`` defaults to the finite min/max over layers).
    Overlaid step histograms coloured by depth on one Axes (``layout="overlay"``, returns it),
    or small multiples with shared axes (two per row, see :func:`subplots`) when ``layout="row"`` or ``ax`` is a
    sequence of Axes (returns the array of Axes).
    """
    fn = "plot_layer_histograms"
    if isinstance(values_per_layer, Mapping):
        labels = labels or [str(k) for k in values_per_layer]
        values_per_layer = list(values_per_layer.values())
    vals = [np.asarray(v, dtype=np.float64).ravel() for v in values_per_layer]
    if not vals:
        raise ValueError(f"{fn}: no layers given")
    labels = list(labels) if labels is not None else [f"layer {i + 1}" for i in np.arange(len(vals))]
    if len(labels) != len(vals):
        raise ValueError(f"{fn}: {len(labels)} labels for {len(vals)} layers")
    if range is None:
        finite = np.concatenate([v[np.isfinite(v)] for v in vals])
        range = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
        range = range if range[1] > range[0] else (range[0] - 0.5, range[1] + 0.5)
    edges = np.linspace(range[0], range[1], int(bins) + 1)
    colors = depth_colors(len(vals))
    multiples = layout == "row" or (ax is not None and not isinstance(ax, mpl.axes.Axes))
    if layout not in ("overlay", "row"):
        raise ValueError(f"{fn}: layout must be 'overlay' or 'row', got {layout!r}")
    if multiples:
        if ax is None:
            _, ax = subplots(len(vals), sharex=True, sharey=True, panel_height=2.4)
        axes = np.asarray(ax, dtype=object).ravel()
        if len(axes) < len(vals):
            raise ValueError(f"{fn}: {len(axes)} Axes for {len(vals)} layers")
        for a, v, c, lab in zip(axes, vals, colors, labels):
            a.hist(v[np.isfinite(v)], bins=edges, density=density, color=c, alpha=0.85)
            a.set_title(lab)
            _label_axes(a, xlabel, None)
        _label_axes(axes[0], None, "density" if density else "count")
        return axes[:len(vals)]
    ax = _axes(ax, fn)
    for v, c, lab in zip(vals, colors, labels):
        ax.hist(v[np.isfinite(v)], bins=edges, density=density, histtype="step", color=c,
                linewidth=1.8, label=lab)
    _label_axes(ax, xlabel, "density" if density else "count")
    ax.legend()
    return ax


def plot_grad_norms_vs_depth(norms_by_config, ax=None, log=True, band="std", colors=None,
                             xlabel="layer $l$",
                             ylabel=r"$\|\partial L/\partial W_l\|_F$"):
    r"""Gradient norm per layer, one line per configuration (vanishing/exploding at a glance).

    ``norms_by_config``: dict label -> array ``(L,)`` (e.g. from
    :func:`actgrad.diagnostics.gradient_norms`) or ``(seeds, L)`` (mean line + ``band``).
    Layers are numbered 1..L on the x axis. A label that is an activation name gets its
    palette colour; ``colors`` (dict label -> colour) overrides. Log y axis by default.
    """
    fn = "plot_grad_norms_vs_depth"
    if not isinstance(norms_by_config, Mapping) or not norms_by_config:
        raise TypeError(f"{fn}: expected a non-empty dict label -> norms per layer, "
                        f"got {type(norms_by_config).__name__}")
    ax = _axes(ax, fn)
    for i, (label, norms) in enumerate(norms_by_config.items()):
        norms = np.asarray(norms, dtype=np.float64)
        color = (colors or {}).get(label) or color_for(label, i)
        _mean_band(ax, np.arange(1, norms.shape[-1] + 1), norms, color, str(label), band,
                   marker="o", markersize=4)
    if log:
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
    _label_axes(ax, xlabel, ylabel)
    ax.legend()
    return ax


# ----------------------------------------------------------------------------- training
def _curve(v):
    if hasattr(v, "loss"):
        return np.asarray(v.loss, dtype=np.float64)
    if isinstance(v, Sequence) and v and all(hasattr(h, "loss") for h in v):
        runs = [np.asarray(h.loss, dtype=np.float64) for h in v]
        n = min(len(r) for r in runs)
        return np.stack([r[:n] for r in runs])
    return np.asarray(v, dtype=np.float64)


def plot_training_curves(curves, ax=None, band="std", log=False, colors=None, xlabel="step",
                         ylabel="loss"):
    r"""Training curves: per label, the mean over runs and a shaded band.

    ``curves``: dict label -> array ``(steps,)`` or ``(seeds, steps)``, a ``History`` (uses
    ``.loss``) or a list of Histories (stacked, cut to the shortest); or one such value
    without a label. ``band``: ``"std"`` (mean +- std), ``"sem"`` (standard error),
    ``"minmax"`` or None. Activation-name labels get their palette colour.
    """
    ax = _axes(ax, "plot_training_curves")
    labelled = isinstance(curves, Mapping)
    items = curves.items() if labelled else [(None, curves)]
    for i, (label, v) in enumerate(items):
        Y = _curve(v)
        color = (colors or {}).get(label) or color_for(label, i)
        _mean_band(ax, np.arange(Y.shape[-1]), Y, color, None if label is None else str(label),
                   band)
    if log:
        ax.set_yscale("log")
    _label_axes(ax, xlabel, ylabel)
    if labelled:
        ax.legend()
    return ax


# ----------------------------------------------------------------------------- 2-D views
def plot_decision_boundary(predict_fn, X, y, ax=None, resolution=200, padding=0.25,
                           alpha=0.25):
    r"""Decision regions of a 2-D classifier with the data on top.

    ``predict_fn``: maps ``(M, 2)`` points to integer labels ``(M,)`` or to scores
    ``(M, C)`` (argmax is taken). ``X`` ``(N, 2)``, ``y`` int ``(N,)``. Regions and points use
    :data:`COLORS` by class (at most ``len(COLORS)`` classes). The grid is ``resolution`` squared
    points over the data's bounding box plus ``padding``.
    """
    fn = "plot_decision_boundary"
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
    if X.ndim != 2 or X.shape[1] != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"{fn}: need X (N, 2) and y (N,), got {X.shape} and {y.shape}")
    ax = _axes(ax, fn)
    (x0, y0), (x1, y1) = X.min(axis=0) - padding, X.max(axis=0) + padding
    xx, yy = np.meshgrid(np.linspace(x0, x1, int(resolution)), np.linspace(y0, y1, int(resolution)))
    out = np.asarray(predict_fn(np.column_stack([xx.ravel(), yy.ravel()])))
    if out.ndim == 2 and out.shape[1] > 1:
        out = out.argmax(axis=1)
    if out.shape != (xx.size,):
        raise ValueError(f"{fn}: predict_fn must return labels (M,) or scores (M, C>1), got "
                         f"shape {out.shape}")
    Z = out.reshape(xx.shape).astype(np.int64)
    k = int(max(Z.max(), y.max())) + 1
    if k > len(COLORS):
        raise ValueError(f"{fn}: at most {len(COLORS)} classes, got {k}")
    ax.contourf(xx, yy, Z, levels=np.arange(k + 1) - 0.5, colors=COLORS[:k], alpha=alpha)
    ax.scatter(X[:, 0], X[:, 1], c=[COLORS[int(c)] for c in y], s=14, edgecolors="white",
               linewidths=0.4)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    _label_axes(ax, "$x_1$", "$x_2$")
    return ax


def plot_matrix(M, ax=None, title=None, cmap="RdBu_r", symmetric=True, colorbar=True,
                xlabel="$j$", ylabel="$i$"):
    r"""Heatmap of a matrix (e.g. the softmax Jacobian :math:`\partial s_i/\partial x_j`) with a
    colorbar. ``symmetric=True`` centres a diverging colormap at 0 (``vmin = -vmax``)."""
    M = np.asarray(M, dtype=np.float64)
    if M.ndim != 2:
        raise ValueError(f"plot_matrix: M must be 2-D, got shape {M.shape}")
    ax = _axes(ax, "plot_matrix")
    finite = M[np.isfinite(M)]
    vmax = float(np.abs(finite).max()) if finite.size else 1.0
    vmax = vmax if vmax > 0 else 1.0
    lims = dict(vmin=-vmax, vmax=vmax) if symmetric else {}
    im = ax.imshow(M, cmap=cmap, interpolation="nearest", **lims)
    ax.grid(False)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
    if colorbar:
        ax.figure.colorbar(im, ax=ax)
    _label_axes(ax, xlabel, ylabel, title)
    return ax
