"""Unit tests of the course layer: the reference lockout, the feedback scrubber, collection
patterns, and the self-check's exit code."""
from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import actgrad  # noqa: E402
from actgrad import ACTIVATIONS  # noqa: E402
from actgrad._grading import ReferenceUsed, call_student, forbidden_references, reference_locked  # noqa: E402
from actgrad.activations import sigmoid_prime as _aliased_sigmoid_prime  # noqa: E402
from course.collect import default_regexp  # noqa: E402
from course.nbg import resolve_assignments  # noqa: E402
from course.scrub import scrub_source  # noqa: E402

X = np.linspace(-2.0, 2.0, 9)


# --- Students' functions, defined at module level like notebook cells ---------------------------
def honest(x):
    e = np.exp(-np.abs(x))
    return e / (1 + e) ** 2


def via_module(x):
    return actgrad.activations.sigmoid_prime(x)


def via_alias(x):
    return _aliased_sigmoid_prime(x)


def via_local_import(x):
    from actgrad.activations import sigmoid_prime
    return sigmoid_prime(x)


_REGISTRY = {"s": ACTIVATIONS["sigmoid"]}


def via_registry(x):  # invisible to the static check: caught at run time
    return _REGISTRY["s"].prime(x)


def via_registry_swallowed(x):
    try:
        return _REGISTRY["s"].prime(x)
    except Exception:
        return honest(x)


def _helper(x):
    return _aliased_sigmoid_prime(x)


def via_helper(x):
    return _helper(x)


def via_default(x, f=_aliased_sigmoid_prime):
    return f(x)


def via_torch(x):
    import torch
    return torch.sigmoid(torch.tensor(x)).numpy()


@pytest.mark.parametrize("fn", [via_module, via_alias, via_local_import, via_helper, via_default,
                                via_torch, functools.partial(via_alias)])
def test_static_check_catches_references(fn):
    assert forbidden_references(fn)
    with pytest.raises(ReferenceUsed):
        call_student(fn, X)


@pytest.mark.parametrize("fn", [via_registry, via_registry_swallowed])
def test_runtime_lockout_catches_hidden_calls(fn):
    assert forbidden_references(fn) == []
    with pytest.raises(ReferenceUsed, match="sigmoid_prime"):
        call_student(fn, X)


def test_honest_answer_passes_and_package_is_restored():
    expected = actgrad.activations.sigmoid_prime(X)
    np.testing.assert_allclose(call_student(honest, X), expected, rtol=1e-12)
    with pytest.raises(ReferenceUsed):
        call_student(via_alias, X)
    # every alias works again after grading
    np.testing.assert_allclose(_aliased_sigmoid_prime(X), expected)
    np.testing.assert_allclose(ACTIVATIONS["sigmoid"].prime(X), expected)
    np.testing.assert_allclose(actgrad.activations.sigmoid_prime(X), expected)
    model = actgrad.MLP([3, 4, 1], seed=0)
    out, _ = model.forward(np.ones((2, 3)))
    assert out.shape == (2, 1)


def test_lockout_disables_every_actgrad_function_and_restores_it():
    with pytest.raises(ReferenceUsed):
        with reference_locked():
            actgrad.MLP([2, 2], seed=0)
    with pytest.raises(ReferenceUsed):
        with reference_locked():
            actgrad.gradcheck.numerical_gradient(lambda t: float(np.sum(t)), np.ones(2))
    np.testing.assert_allclose(
        actgrad.gradcheck.numerical_gradient(lambda t: float(np.sum(t ** 2)), np.ones(2)), [2, 2], rtol=1e-6)


def test_call_student_rejects_non_callable():
    with pytest.raises(TypeError):
        call_student(np.ones(3))


def test_scrub_source_removes_hidden_region():
    src = "a = 1\n### BEGIN HIDDEN TESTS\nassert secret(1)\n### END HIDDEN TESTS\nb = 2\n"
    out, hidden = scrub_source(src, "# hidden")
    assert hidden and "secret" not in out and out.startswith("a = 1\n# hidden\n") and "b = 2" in out
    out, hidden = scrub_source("x = 1\n    ### BEGIN HIDDEN TESTS\n    assert secret()\n", "# hidden")
    assert hidden and "secret" not in out                        # unterminated region
    assert scrub_source("x = 1", "# h") == ("x = 1", False)


def test_collect_pattern():
    import re
    rx = re.compile(default_regexp("a1_activation_derivatives"))
    for name, student in [("/in/alice_a1_activation_derivatives.ipynb", "alice"),
                          ("/in/extracted/bob_smith_a1_activation_derivatives (1).ipynb", "bob_smith"),
                          ("carol-7_a1_activation_derivatives-late.ipynb", "carol-7")]:
        m = rx.match(name)
        assert m and m["student_id"] == student and m["file_id"] == "a1_activation_derivatives"
    assert not rx.match("/in/alice_a2_softmax_cross_entropy.ipynb")


def test_resolve_assignments():
    assert resolve_assignments(["a3"]) == ["a3_backprop"]
    assert len(resolve_assignments(None)) == 4
    with pytest.raises(SystemExit):
        resolve_assignments(["a9"])


@pytest.mark.slow
def test_check_command_exit_codes():
    a = "a4_gradient_flow"
    run = lambda p: subprocess.run([sys.executable, "-m", "course", "check", str(p)], cwd=ROOT,
                                   capture_output=True, text=True, timeout=600)
    stub = run(ROOT / "exercises" / a / f"{a}.ipynb")
    assert stub.returncode == 1 and "FAIL" in stub.stdout and "NotImplementedError" in stub.stdout
    good = run(ROOT / "solutions" / a / f"{a}.ipynb")
    assert good.returncode == 0 and "PASS" in good.stdout, good.stdout + good.stderr
