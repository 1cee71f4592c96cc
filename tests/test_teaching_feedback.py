"""Feedback that teaches (issue 12): planted common mistakes make ``course-check`` fail with a
message that names the call, the numbers and, where the mistake is a common one, the hint;
correct notebooks pass; the score line is printed; the check runs from the notebook's own
folder with the installed console script. Plus the assertion helpers' own behaviour.

Each planted notebook is the release with the solution's answers filled in, except the planted
ones, as a student would hand it in (no hidden tests): several mistakes in different functions
per notebook, since every test cell is reported on its own.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from course import ASSIGNMENTS  # noqa: E402

CHECK = Path(sys.executable).with_name("course-check")
SCORE = re.compile(r"^visible tests: (\d+(?:\.\d+)?)/(\d+(?:\.\d+)?) points \(hidden tests run at grading", re.M)
SOLUTION_MARK = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$\n?", re.M)


def _src(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def student_notebook(a: str, answers: dict, dest: Path) -> Path:
    """The release of ``a`` with the solution's code in every answer cell except ``answers``."""
    sol = json.loads((ROOT / "solutions" / a / f"{a}.ipynb").read_text())
    code = {c["metadata"]["nbgrader"]["grade_id"]: SOLUTION_MARK.sub("", _src(c)) for c in sol["cells"]
            if c["metadata"].get("nbgrader", {}).get("solution")}
    nb = json.loads((ROOT / "exercises" / a / f"{a}.ipynb").read_text())
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("solution"):
            cell["source"] = answers.get(meta["grade_id"], code[meta["grade_id"]])
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{a}.ipynb"
    path.write_text(json.dumps(nb, indent=1))
    return path


def run_check(path: Path) -> subprocess.CompletedProcess:
    """The installed console script, run from the notebook's own folder (not the repository)."""
    assert CHECK.exists(), f"{CHECK} missing: run `pip install -e .` (pyproject installs course-check)"
    return subprocess.run([str(CHECK), path.name], cwd=path.parent, capture_output=True, text=True,
                          timeout=300)


def score(out: str) -> tuple[float, float]:
    m = SCORE.search(out)
    assert m, f"no score line in the output:\n{out}"
    return float(m.group(1)), float(m.group(2))


def failure(out: str, test_id_head: str) -> str:
    """The block of check's output that reports the failing test cell whose first line starts
    with ``test_id_head`` (e.g. ``# sigmoid_prime``)."""
    blocks = re.split(r"\n(?=\[FAIL\] )", out)
    found = [b for b in blocks if b.startswith(f"[FAIL] {test_id_head}")]
    assert found, f"no failure reported for {test_id_head!r}:\n{out}"
    return found[0]


def expect_in(block: str, *needles: str) -> None:
    for n in needles:
        assert n in block, f"{n!r} not in the failure message:\n{block}"


def body(signature: str, code: str) -> str:
    return signature + "\n" + "\n".join("    " + l for l in code.strip().splitlines()) + "\n"


# ---------------------------------------------------------------------------------------------
# Planted mistakes: answer cell -> wrong code; then what check must say about them.
# ---------------------------------------------------------------------------------------------
PLANTED = {
    "a1_activation_derivatives": ({
        "sigmoid_prime": body("def sigmoid_prime(x):", "x = as_float_array(x)\ns = 1 / (1 + np.exp(-x))\nreturn s * (1 - s)"),
        "relu_prime": body("def relu_prime(x):", "return as_float_array(x) > 0"),
        "leaky_relu_prime": body("def leaky_relu_prime(x, alpha=0.01):",
                                 "x = as_float_array(x)\nreturn np.where(x >= 0, 1.0, alpha).astype(x.dtype)"),
        "elu_prime": body("def elu_prime(x, alpha=1.0):",
                          "x = as_float_array(x)\nreturn np.where(x > 0, 1.0, alpha * np.exp(x)).astype(x.dtype)"),
    }, [
        ("# sigmoid_prime", ["sigmoid_prime(float64 (7,) in [-10000, 10000])", "RuntimeWarning: overflow",
                             "np.where evaluates BOTH branches"]),
        ("# relu_prime", ["relu_prime(float64 (2, 3)", "got booleans", "astype(x.dtype)"]),
        ("# leaky_relu_prime", ["leaky_relu_prime(float64 (4,) [-10000, -0, 0, 10000], alpha=0.2)",
                                "expected 0.2, got 1"]),
        ("# elu_prime", ["elu_prime(float64 (6,)", "alpha=2.0", "RuntimeWarning: overflow",
                         "np.where evaluates BOTH branches"]),
    ]),
    "a2_softmax_cross_entropy": ({
        "softmax": body("def softmax(x, axis=-1):", "x = as_float_array(x)\ne = np.exp(x - np.max(x, axis=axis, keepdims=True))\n"
                                                    "return e / np.sum(e, axis=0, keepdims=True)"),
        "log_softmax": body("def log_softmax(x, axis=-1):", "return np.log(softmax(x, axis))"),
        "softmax_cross_entropy": body("def softmax_cross_entropy(logits, y):",
                                      "logits = as_float_array(logits)\nn = logits.shape[0]\n"
                                      "m = logits.max(axis=1, keepdims=True)\n"
                                      "logp = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))\n"
                                      "d = np.exp(logp)\nd[np.arange(n), y] -= 1.0\nreturn -float(np.mean(logp[np.arange(n), y])), d"),
    }, [
        ("# softmax (", ["softmax(float64 (2, 3) [1, 2, 3, -1, 0, 0.5])", "values differ",
                         "largest relative error", "expected 0.121952, got 0.622459", "keepdims=True"]),
        ("# log_softmax", ["log_softmax(float64 (2, 4)",
                           "This test calls your `softmax`; its own test fails too: fix that first."]),
        ("# softmax_cross_entropy", ["softmax_cross_entropy(float64 (4, 3)", "dlogits:",
                                     "without the 1/N of the mean",
                                     "This test calls your `log_softmax`; its own test fails too"]),
    ]),
    "a3_backprop": ({
        "affine": body("def affine_forward(x, W, b):", "return x @ W + b, AffineCache(x, W)") + "\n\n" +
                  body("def affine_backward(dout, cache):", "x, W = cache\nreturn dout @ W.T, x.T @ dout, dout.sum(axis=1)"),
        "mlp": body("def mlp_loss(params, X, y, activation=\"relu\"):", """
L = len(params) // 2
h, caches = X, []
for l in range(1, L + 1):
    h, c = affine_forward(h, params[f"W{l}"], params[f"b{l}"])
    caches.append(("a", c))
    if l < L - 1:
        h, c = act_forward(h, activation)
        caches.append(("f", c))
diff = h - y
g = 2.0 * diff / diff.size
grads = {}
for l in range(L, 0, -1):
    kind, c = caches.pop()
    if kind == "f":
        g = act_backward(g, c)
        kind, c = caches.pop()
    g, grads[f"W{l}"], grads[f"b{l}"] = affine_backward(g, c)
return float(np.mean(diff ** 2)), grads"""),
    }, [
        ("# affine_forward", ["affine_backward(float64 (4, 5)", "cache)", "db: expected shape (5,), got (4,)",
                              "axis=0"]),
        ("# mlp_loss", ["mlp_loss({W1: float64(5, 8)", "activation='tanh'", "loss: expected 2.5625, got",
                        "missing after the last hidden layer",
                        "This test calls your `affine_backward`; its own test fails too"]),
    ]),
    "a4_gradient_flow": ({
        "clip_grad_norm": body("def clip_grad_norm(grads, max_norm):", """
total = float(np.sqrt(sum(float(np.sum(g * g)) for k, g in grads.items() if k.startswith("W"))))
coef = max_norm / (total + 1e-6)
if coef < 1.0:
    for k in grads:
        if k.startswith("W"):
            grads[k] *= coef
return total"""),
        "init": body("def xavier_uniform(fan_in, fan_out, rng, gain=1.0):",
                     "a = gain * np.sqrt(6.0 / (fan_in + fan_out))\nreturn rng.uniform(-a, a, size=(fan_in, fan_out))") +
                "\n\n" + body("def he_normal(fan_in, fan_out, rng):", "return rng.normal(0.0, 2.0 / fan_in, size=(fan_in, fan_out))"),
        "diagnose": body("def diagnose(signal, low=1e-3, high=1e3):",
                         "r = signal[-1] / signal[0]\nreturn 'vanishing' if r < low else 'exploding' if r > high else 'healthy'") +
                    "\n\n" + body("def diagnose_networks():", "return {n: ('healthy', 'none') for n in NETWORKS}"),
    }, [
        ("# clip_grad_norm", ["clip_grad_norm({W1: float64(2, 2), b1: float64(2,)}, 1.0)", "expected 5, got 3",
                              "biases are left out of the total norm"]),
        ("# he_normal", ["he_normal(250, 400, Generator)", "variance of W: expected 0.008",
                         "std = 2 / fan_in: that is the variance"]),
        ("# diagnose (", ["diagnose(float64 (3,) [1e-05, 0.01, 1])", "returned 'exploding', expected 'vanishing'",
                          "r is first over last"]),
    ]),
    "a5_normalization_residual": ({
        "batchnorm_forward": body(
            "def batchnorm_forward(x, gamma, beta, running_mean, running_var, train=True, momentum=0.1, eps=1e-5):", """
if train:
    mu, var = x.mean(axis=0), x.var(axis=0)
    running_mean = (1 - momentum) * running_mean + momentum * mu
    running_var = (1 - momentum) * running_var + momentum * var
else:
    mu, var = running_mean, running_var
inv_sigma = 1.0 / np.sqrt(var + eps)
xhat = (x - mu) * inv_sigma
return gamma * xhat + beta, running_mean, running_var, (xhat, inv_sigma, gamma, train)"""),
        "residual_backward": body("def residual_backward(dout, cache):", """
x, z, h, W1, W2 = cache
dz = (dout @ W2.T) * (z > 0)
return dz @ W1.T, {"W1": x.T @ dz, "b1": dz.sum(axis=0), "W2": h.T @ dout, "b2": dout.sum(axis=0)}"""),
    }, [
        ("# batchnorm_forward, training", ["batchnorm_forward(float64 (4, 3)", "train=True", "running_var:",
                                           "expected 2.1, got 1.8", "(0,): 1.56667 vs 1.4", "UNBIASED variance"]),
        ("# residual_backward", ["residual_backward(float64 (4, 3) in [", "tuple of 5): dx:", "misses the identity path"]),
    ]),
}


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_correct_notebook_passes_with_full_score(a, tmp_path):
    proc = run_check(student_notebook(a, {}, tmp_path / "work"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got, total = score(proc.stdout)
    assert got == total >= 10, proc.stdout
    assert "PASS" in proc.stdout and "FAIL" not in proc.stdout
    assert "TCP" not in proc.stdout + proc.stderr and not proc.stderr.strip(), proc.stderr


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_planted_mistakes_are_explained(a, tmp_path):
    answers, expected = PLANTED[a]
    proc = run_check(student_notebook(a, answers, tmp_path / "work"))
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    for head, needles in expected:
        expect_in(failure(out, head), *needles)
    got, total = score(out)
    assert got < total, out
    assert "AssertionError" not in out and "Traceback" not in out.split("--- in the student's code ---")[0], out
    assert not proc.stderr.strip(), proc.stderr


def test_blank_release_scores_zero_and_names_the_stub(tmp_path):
    a = ASSIGNMENTS[0]
    nb = tmp_path / f"{a}.ipynb"
    nb.write_bytes((ROOT / "exercises" / a / f"{a}.ipynb").read_bytes())
    proc = run_check(nb)
    assert proc.returncode == 1
    assert score(proc.stdout) == (0, 14), proc.stdout
    expect_in(failure(proc.stdout, "# sigmoid_prime"), "sigmoid_prime(float64 (3, 11) in [-8, 8])",
              "raise NotImplementedError()")


def test_python_m_course_check_works_outside_the_repository(tmp_path):
    """`python -m course check` from the notebook's folder (the installed package, not the cwd)."""
    a = ASSIGNMENTS[0]
    nb = student_notebook(a, {}, tmp_path / "elsewhere")
    proc = subprocess.run([sys.executable, "-m", "course", "check", nb.name], cwd=nb.parent,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert score(proc.stdout) == (14, 14)


def test_copy_makes_a_working_copy_and_never_overwrites(tmp_path):
    dest = tmp_path / "work"
    proc = subprocess.run([str(CHECK), "--copy", "a2", str(dest)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    a = ASSIGNMENTS[1]
    copy = dest / f"{a}.ipynb"
    assert copy.read_bytes() == (ROOT / "exercises" / a / f"{a}.ipynb").read_bytes()
    copy.write_text("my work")
    again = subprocess.run([str(CHECK), "--copy", "a2", str(dest)], capture_output=True, text=True, timeout=60)
    assert again.returncode != 0 and "not overwriting" in again.stderr + again.stdout
    assert copy.read_text() == "my work"


# ---------------------------------------------------------------------------------------------
# The helpers themselves (no notebook): messages, hints, cascades.
# ---------------------------------------------------------------------------------------------
def _message(fn, *args, **kwargs) -> str:
    with pytest.raises(AssertionError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_close_reports_worst_element_and_input():
    from course.asserts import check

    def halved_sigmoid_prime(x):
        return 0.5 * np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))) ** 2

    x = np.linspace(-2.0, 2.0, 5)
    want = np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))) ** 2      # closed form, independent
    msg = _message(check, halved_sigmoid_prime, x, want=want, rtol=1e-9)
    expect_in(msg, "halved_sigmoid_prime(float64 (5,) [-2, -1, 0, 1, 2])", "5 of 5 values differ",
              "largest relative error 0.5 at index (0,) (input -2): expected 0.104994, got 0.0524968",
              "(2,): 0.25 vs 0.125",
              "0.5 times the expected ones: a factor 2 too small")


def test_close_dtype_shape_and_variance_hints():
    from course.asserts import close

    x32 = np.ones(3, dtype=np.float32)
    expect_in(_message(close, x32.astype(np.float64), x32), "expected dtype float32, got float64",
              "float32 in must give float32 out")
    expect_in(_message(close, np.ones((3, 1)), np.ones(3)), "expected shape (3,), got (3, 1)")
    expect_in(_message(close, np.ones((4, 3)), np.ones((3, 4))), "your result is transposed")
    std = np.array([0.5, 2.0, 3.0])
    expect_in(_message(close, std ** 2, std), "variance where the standard deviation is wanted")


def test_run_turns_warnings_into_named_failures_and_names_cascades():
    from course.asserts import close, run

    def bad(x):
        return 1.0 / (1.0 + np.exp(-x))

    msg = _message(run, bad, np.array([-1e4, 0.0]))
    expect_in(msg, "bad(float64 (2,) [-10000, 0])", "RuntimeWarning: overflow", "np.where evaluates BOTH")

    def softmax(z):
        return np.exp(z) / np.exp(z).sum(axis=0)

    def uses_softmax(z):
        return softmax(z)

    z = np.array([[0.0, 1.0], [2.0, 3.0]])
    want = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    with pytest.raises(AssertionError):
        close(run(softmax, z), want)
    msg = _message(lambda: close(run(uses_softmax, z, uses="softmax"), want))
    expect_in(msg, "This test calls your `softmax`; its own test fails too: fix that first.")


def test_no_bare_assert_in_any_test_cell():
    import ast

    for a in ASSIGNMENTS:
        for kind in ("solutions", "exercises"):
            nb = json.loads((ROOT / kind / a / f"{a}.ipynb").read_text())
            for cell in nb["cells"]:
                meta = cell["metadata"].get("nbgrader", {})
                if cell["cell_type"] == "code" and meta.get("grade") and not meta.get("solution"):
                    tree = ast.parse(_src(cell))
                    bare = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Assert)]
                    assert not bare, f"{kind}/{a} {meta['grade_id']}: bare assert on lines {bare}"
                    assert "np.testing" not in _src(cell), f"{kind}/{a} {meta['grade_id']}: use course.asserts"


def test_every_question_links_to_an_existing_book_section():
    """Each question's markdown links to a book chapter (a page link, which Jupyter Book resolves
    without warnings; MyST cannot resolve a #section anchor of another page without heading
    anchors) and names a section that exists in that chapter."""
    heads = {}
    for path in (ROOT / "book").glob("*.ipynb"):
        heads[path.name] = [re.sub(r"[`*$\\]", "", m.group(1)) for cell in json.loads(path.read_text())["cells"]
                            if cell["cell_type"] == "markdown"
                            for m in re.finditer(r"^#{1,4} (.+)$", _src(cell), re.M)]
    # The site numbers chapters in _toc.yml order (10a_ and 10b_ are chapters 11 and 12), so a
    # "Chapter N" in a link must be the page's position there, not its file number.
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    numbered = [Path(c["file"]).name + ".ipynb" for part in toc["parts"] if part.get("numbered")
                for c in part["chapters"]]
    for a in ASSIGNMENTS:
        nb = json.loads((ROOT / "exercises" / a / f"{a}.ipynb").read_text())
        questions = [c for c in nb["cells"] if c["cell_type"] == "markdown" and re.match(r"## \d+\.", _src(c))]
        assert len(questions) >= 4, a
        for cell in questions:
            links = re.findall(r"\[Chapter (\w+), section \*([^*]+)\*\]\(\.\./\.\./book/([\w.]+\.ipynb)\)", _src(cell))
            assert links, f"{a}: question without a link to the book: {_src(cell)[:60]}"
            for number, section, page in links:
                assert page in heads, f"{a}: no book/{page}"
                want = numbered.index(page) + 1 if page in numbered else None
                assert number == str(want), (f"{a}: the link to book/{page} says 'Chapter {number}', but the "
                                             f"site numbers that chapter {want} (its place in _toc.yml)")
                name = re.sub(r"[`*$\\]", "", section)
                assert any(h.startswith(name) for h in heads[page]), f"{a}: no section {section!r} in book/{page}"
