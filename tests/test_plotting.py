"""actgrad.plotting: every helper returns Axes with the expected artists, uses the palette,
runs headless (Agg) and emits no warnings. Curve data is checked against NumPy directly."""
import types
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection  # noqa: E402
from matplotlib.colors import is_color_like, to_rgba  # noqa: E402

from actgrad import plotting as P  # noqa: E402
from actgrad.activations import ACTIVATIONS  # noqa: E402

CONTRACT = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "silu",
            "softplus", "mish"]


@pytest.fixture(autouse=True)
def no_warnings_and_close():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    plt.close("all")


def same_color(a, b):
    return np.allclose(to_rgba(a), to_rgba(b))


def test_palette_covers_contract_and_is_distinct():
    assert set(CONTRACT) | {"prelu", "linear"} <= set(P.PALETTE)
    assert set(ACTIVATIONS) <= set(P.PALETTE)
    assert all(is_color_like(c) for c in list(P.PALETTE.values()) + P.COLORS)
    rgba = {to_rgba(c) for c in P.PALETTE.values()}
    assert len(rgba) == len(P.PALETTE)
    assert len({to_rgba(c) for c in P.COLORS}) == len(P.COLORS)


def test_use_style_sets_rcparams():
    with matplotlib.rc_context():
        P.use_style()
        assert matplotlib.rcParams["axes.grid"] is True
        cycle = [d["color"] for d in matplotlib.rcParams["axes.prop_cycle"]]
        assert [to_rgba(c) for c in cycle] == [to_rgba(c) for c in P.COLORS]
    with P.style():
        assert matplotlib.rcParams["font.size"] == P.STYLE["font.size"]


def test_plot_activation_lines_colour_and_data():
    x = np.linspace(-4, 4, 101)
    ax = P.plot_activation("tanh", x=x)
    assert isinstance(ax, plt.Axes)
    f, df = ax.get_lines()
    assert len(ax.get_lines()) == 2
    assert same_color(f.get_color(), P.PALETTE["tanh"]) and same_color(df.get_color(),
                                                                         P.PALETTE["tanh"])
    assert f.get_linestyle() == "-" and df.get_linestyle() == "--"
    np.testing.assert_allclose(f.get_ydata(), np.tanh(x), rtol=1e-12)
    np.testing.assert_allclose(df.get_ydata(), 1 - np.tanh(x) ** 2, rtol=1e-10, atol=1e-15)
    assert f.get_label() == "tanh" and df.get_label() == "tanh'"
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None
    # composing on the same axes, without derivative
    P.plot_activation("relu", ax=ax, derivative=False)
    assert len(ax.get_lines()) == 3
    assert same_color(ax.get_lines()[-1].get_color(), P.PALETTE["relu"])


def test_plot_activation_other_specs():
    ax = P.plot_activation((np.sin, np.cos), label="sin")
    assert [l.get_label() for l in ax.get_lines()] == ["sin", "sin'"]
    ax = P.plot_activation("linear")
    np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), 1.0)
    assert same_color(ax.get_lines()[0].get_color(), P.PALETTE["linear"])
    ax = P.plot_activation(ACTIVATIONS["gelu"], color="k")
    assert same_color(ax.get_lines()[0].get_color(), "k")
    with pytest.raises(ValueError, match="plot_activation"):
        P.plot_activation("nope")
    with pytest.raises(TypeError, match="plot_activation"):
        P.plot_activation(3)
    with pytest.raises(TypeError, match="plot_activation"):
        P.plot_activation("relu", ax="not an axes")


def test_plot_activations_grid():
    fig, axes = P.plot_activations_grid(["relu", "tanh", "sigmoid", "gelu"], ncols=3)
    assert len(axes) == 4 and len(fig.axes) == 4
    for ax, name in zip(axes, ["relu", "tanh", "sigmoid", "gelu"]):
        assert ax.get_title() == name and len(ax.get_lines()) == 2
        assert same_color(ax.get_lines()[0].get_color(), P.PALETTE[name])


def test_layer_histograms_overlay_and_row():
    rng = np.random.default_rng(0)
    layers = [rng.normal(0, s, size=(100, 10)) for s in (1.0, 0.5, 0.1)]
    ax = P.plot_layer_histograms(layers, bins=30)
    assert isinstance(ax, plt.Axes) and len(ax.patches) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["layer 1", "layer 2",
                                                                   "layer 3"]
    assert ax.get_xlabel() and ax.get_ylabel() == "density"
    axes = P.plot_layer_histograms({"a": layers[0], "b": layers[1]}, layout="row", bins=20,
                                   density=False)
    assert len(axes) == 2 and [a.get_title() for a in axes] == ["a", "b"]
    heights = [p.get_height() for p in axes[0].patches]
    assert len(heights) == 20 and sum(heights) == layers[0].size   # counts, all in range
    fig, given = plt.subplots(1, 3)
    out = P.plot_layer_histograms(layers, ax=given)
    assert list(out) == list(given)
    with pytest.raises(ValueError, match="plot_layer_histograms"):
        P.plot_layer_histograms(layers, labels=["x"])


def test_grad_norms_vs_depth():
    rng = np.random.default_rng(1)
    runs = rng.uniform(0.1, 1, size=(3, 5))
    ax = P.plot_grad_norms_vs_depth({"relu": [1, 0.5, 0.2, 0.1, 0.05], "tanh": [1, 1, 1, 1, 1],
                                     "custom": runs})
    lines = ax.get_lines()
    assert len(lines) == 3 and ax.get_yscale() == "log"
    np.testing.assert_array_equal(lines[0].get_xdata(), [1, 2, 3, 4, 5])
    assert same_color(lines[0].get_color(), P.PALETTE["relu"])
    assert same_color(lines[1].get_color(), P.PALETTE["tanh"])
    np.testing.assert_allclose(lines[2].get_ydata(), runs.mean(axis=0))
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 1
    assert ax.get_xlabel() and ax.get_ylabel()
    ax = P.plot_grad_norms_vs_depth({"x": [1, 2]}, log=False, colors={"x": "red"})
    assert ax.get_yscale() == "linear" and same_color(ax.get_lines()[0].get_color(), "red")
    with pytest.raises(TypeError, match="plot_grad_norms_vs_depth"):
        P.plot_grad_norms_vs_depth([1, 2, 3])


def test_decision_boundary_labels_or_scores():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] > 0).astype(int)
    ax = P.plot_decision_boundary(lambda Q: (Q[:, 0] > 0).astype(int), X, y, resolution=50)
    pts = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(pts) == 1 and len(pts[0].get_offsets()) == 60
    assert len(ax.collections) >= 2  # filled contours + points
    assert ax.get_xlabel() and ax.get_ylabel()
    ax2 = P.plot_decision_boundary(lambda Q: np.column_stack([-Q[:, 0], Q[:, 0]]), X, y,
                                   resolution=50)
    assert len(ax2.collections) == len(ax.collections)
    with pytest.raises(ValueError, match="plot_decision_boundary"):
        P.plot_decision_boundary(lambda Q: Q[:, :1], X, y)
    with pytest.raises(ValueError, match="plot_decision_boundary"):
        P.plot_decision_boundary(lambda Q: Q[:, 0], X[:, :1], y)


def test_training_curves_mean_and_band():
    rng = np.random.default_rng(3)
    Y = rng.uniform(size=(4, 20))
    ax = P.plot_training_curves({"relu": Y, "single": Y[0]})
    lines = ax.get_lines()
    assert len(lines) == 2
    np.testing.assert_allclose(lines[0].get_ydata(), Y.mean(axis=0))
    assert same_color(lines[0].get_color(), P.PALETTE["relu"])
    polys = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(polys) == 1
    # the std band spans mean +- std
    verts = polys[0].get_paths()[0].vertices
    assert verts[:, 1].max() == pytest.approx((Y.mean(0) + Y.std(0)).max())
    assert verts[:, 1].min() == pytest.approx((Y.mean(0) - Y.std(0)).min())
    ax = P.plot_training_curves({"a": Y}, band=None, log=True)
    assert not ax.collections and ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="band"):
        P.plot_training_curves({"a": Y}, band="iqr")


def test_training_curves_from_histories():
    hs = [types.SimpleNamespace(loss=[3.0, 2.0, 1.0]), types.SimpleNamespace(loss=[5.0, 4.0])]
    ax = P.plot_training_curves({"two seeds": hs})
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [4.0, 3.0])
    ax = P.plot_training_curves(hs[0])   # a single unlabelled history
    assert len(ax.get_lines()) == 1 and ax.get_legend() is None


def test_training_curves_with_real_history():
    from actgrad.datasets import xor
    from actgrad.mlp import MLP
    from actgrad.optim import SGD, train

    X, y = xor(n=64, seed=0)
    model = MLP([2, 8, 2], activation="tanh", seed=0)
    hist = train(model, X, y, SGD(lr=0.1), epochs=3, batch_size=32,
                 progress=False, seed=0)
    ax = P.plot_training_curves({"tanh": [hist]})
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), hist.loss)


def test_plot_matrix_symmetric_with_colorbar():
    s = np.array([0.2, 0.3, 0.5])
    J = np.diag(s) - np.outer(s, s)   # softmax Jacobian, built independently
    ax = P.plot_matrix(J, title="softmax Jacobian")
    (im,) = ax.get_images()
    np.testing.assert_array_equal(im.get_array(), J)
    lo, hi = im.get_clim()
    assert hi == pytest.approx(np.abs(J).max()) and lo == -hi
    assert len(ax.figure.axes) == 2 and ax.get_title() == "softmax Jacobian"
    ax = P.plot_matrix(np.zeros((2, 2)), colorbar=False)
    assert len(ax.figure.axes) == 1
    with pytest.raises(ValueError, match="plot_matrix"):
        P.plot_matrix(np.zeros(3))


def test_derivative_jump_is_a_gap_not_a_segment():
    x = np.linspace(-2, 2, 401)
    ax = P.plot_activation("relu", x=x)
    f, df = ax.get_lines()
    xs, ys = np.asarray(df.get_xdata()), np.asarray(df.get_ydata())
    assert np.isnan(ys).sum() == 1                        # one break, at the kink
    finite = ys[np.isfinite(ys)]
    assert set(np.unique(finite)) == {0.0, 1.0}           # no intermediate values drawn
    np.testing.assert_array_equal(finite, (x > 0).astype(float))   # ReLU'(0) = 0 (PyTorch)
    assert 0 < xs[np.isnan(ys)][0] < x[201]
    # a smooth derivative is not broken
    ax = P.plot_activation("gelu", x=x)
    assert np.isfinite(ax.get_lines()[1].get_ydata()).all()


# ----------------------------------------------------------------------------- readability
def _smallest_text_css_px(fig, shown_px):
    """Independent of plotting.smallest_text_px: draw, collect every visible text's size in pt,
    and scale by how the browser shows the PNG (fig.dpi px per inch, shrunk to shown_px)."""
    fig.canvas.draw()
    sizes = [t.get_fontsize() for t in fig.findobj(lambda a: hasattr(a, "get_fontsize"))
             if t.get_visible() and getattr(t, "get_text", lambda: "")()]
    natural_px = fig.get_size_inches()[0] * fig.dpi
    return min(sizes) * (fig.dpi / 72.0) * min(1.0, shown_px / natural_px), len(sizes)


def _figures():
    rng = np.random.default_rng(4)
    fig, ax = plt.subplots()
    P.plot_training_curves({"relu": rng.uniform(size=(3, 20)), "tanh": rng.uniform(size=(3, 20))},
                           ax=ax)
    ax.set_title("loss")
    yield "default figure", fig
    fig, axes = P.subplots(4)
    for a, name in zip(axes, ["sigmoid", "tanh", "relu", "gelu"]):
        P.plot_activation(name, ax=a)
    yield "subplots(4)", fig
    yield "activation grid, ncols=4 asked", P.plot_activations_grid(sorted(ACTIVATIONS), ncols=4)[0]
    layers = [rng.normal(size=200) for _ in range(5)]
    yield "layer histograms, row", P.plot_layer_histograms(layers, layout="row")[0].figure


@pytest.mark.parametrize("width", [P.COLUMN_PX, P.PHONE_PX], ids=["column", "phone"])
def test_smallest_text_is_readable_on_every_screen(width):
    """The style's promise (plotting.MIN_TEXT_PX = 12 CSS px at the book's 672-px figure column
    and at the 560 px a phone shows a figure at), from each figure's size and font sizes."""
    with P.style():
        for label, fig in _figures():
            px, n = _smallest_text_css_px(fig, width)
            assert n > 5, f"{label}: found only {n} texts; the walk over artists is broken"
            assert px >= P.MIN_TEXT_PX, (
                f"{label}: smallest text {px:.1f} CSS px when shown {width} px wide, expected >= "
                f"{P.MIN_TEXT_PX} (figure {fig.get_size_inches()} in; hint: keep figures "
                f"FIG_WIDTH={P.FIG_WIDTH} in wide, at most MAX_COLUMNS panels per row, fonts >= 11 pt)")
            assert P.smallest_text_px(fig, width) == pytest.approx(px), label
            plt.close(fig)


def test_smallest_text_px_closed_form():
    fig = plt.figure(figsize=(14, 4), dpi=100)
    fig.text(0.5, 0.5, "tiny", fontsize=8)
    fig.text(0.2, 0.5, "big", fontsize=20)
    # 8 pt = 8/72 in = 11.1 image px at 100 dpi; the 1400-px image is shown 672 px wide
    assert P.smallest_text_px(fig, 672) == pytest.approx(8 / 72 * 100 * 672 / 1400)
    assert P.smallest_text_px(fig, 5000) == pytest.approx(8 / 72 * 100), "images never upscale"


def test_subplots_wraps_panels_and_keeps_the_column_width():
    fig, axes = P.subplots(5, ncols=4)
    assert len(axes) == 5 and len(fig.axes) == 5, "unused grid cells must be removed"
    assert fig.get_size_inches()[0] == pytest.approx(P.FIG_WIDTH)
    cols = {round(a.get_position().x0, 3) for a in axes}
    assert len(cols) == P.MAX_COLUMNS, f"asked for 4 columns, expected the cap {P.MAX_COLUMNS}: {cols}"
    with pytest.raises(ValueError, match="subplots"):
        P.subplots(0)
