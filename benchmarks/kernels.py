"""actgrad against PyTorch in the same process: the MLP training step and every activation.

Every figure is a ratio of two timings taken side by side (interleaved rounds, same inputs, same
dtype, same number of threads), so machine load cancels out to first order. Before timing, each
pair is checked to compute the same thing (a benchmark of a wrong result means nothing).
"""
from __future__ import annotations

import atexit
import importlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import actgrad
from actgrad.activations import ACTIVATIONS

from timing import side_by_side

MLP_CASES = [  # (layer sizes, batch, activation)
    ([784, 256, 256, 10], 128, "relu"),
    ([64, 32, 32, 32, 10], 32, "tanh"),
    ([784, 1024, 1024, 10], 256, "relu"),
]

TORCH_ACT = {
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu,
    "leaky_relu": lambda t, alpha=0.01: F.leaky_relu(t, negative_slope=alpha),
    "elu": lambda t, alpha=1.0: F.elu(t, alpha=alpha), "selu": F.selu,
    "gelu": lambda t, approximate="none": F.gelu(t, approximate=approximate),
    "silu": F.silu, "softplus": lambda t, beta=1.0, threshold=20.0: F.softplus(t, beta, threshold),
    "mish": F.mish,
}


def step_flops(sizes, batch):
    """Multiply-add FLOPs of one forward+backward step: per layer 2*N*in*out for z = x W, for
    dW = x^T dz, and (all layers but the first) for dx = dz W^T."""
    return sum(2 * batch * i * o * (3 if l > 0 else 2)
               for l, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])))


def matmul_floor(model, X):
    """A callable doing only the step's matmuls with np.matmul (same shapes, dtype and memory
    layout as actgrad's backprop: x @ W, x.T @ dz, dz @ W.T, into preallocated outputs)."""
    out, caches = model.forward(X)
    ops = []
    for l, c in enumerate(caches, start=1):
        W = model.params[f"W{l}"]
        dz = np.ones_like(c.z)
        pairs = [(c.x, W), (c.x.T, dz)] + ([(dz, W.T)] if l > 1 else [])
        ops += [(a, b, np.empty((a.shape[0], b.shape[1]), np.float32)) for a, b in pairs]

    def floor():
        for a, b, o in ops:
            np.matmul(a, b, out=o)
    return floor


def package_at(rev: str, root: Path):
    """``actgrad`` as it was at git revision ``rev``, imported under another name (``actgrad_<rev>``)
    from a temporary copy, so that it can be timed beside today's in the same process. The package
    imports itself only relatively, which makes the rename work; a copy that does not is refused."""
    tar = subprocess.run(["git", "-C", str(root), "archive", rev, "src/actgrad"], capture_output=True, check=False)
    if tar.returncode:
        raise SystemExit(f"--against {rev}: git archive failed: {tar.stderr.decode().strip()}")
    name = "actgrad_" + "".join(ch if ch.isalnum() else "_" for ch in rev)
    where = Path(tempfile.mkdtemp(prefix="actgrad-rev-"))
    atexit.register(shutil.rmtree, where, ignore_errors=True)
    with tarfile.open(fileobj=BytesIO(tar.stdout)) as t:
        t.extractall(where, filter="data")
    (where / "src" / "actgrad").rename(where / name)
    sys.path.insert(0, str(where))
    module = importlib.import_module(name)
    if not Path(module.mlp.__file__).is_relative_to(where):
        raise SystemExit(f"--against {rev}: that revision's actgrad imports itself by name; cannot compare")
    return module


def bench_mlp(rounds=15, seed=0, before=None):
    """The MLP step (forward, softmax-CE, backward) against PyTorch and the matmul floor; with
    ``before`` (an older actgrad from :func:`package_at`), that version's step is timed in the same
    interleaved rounds ("before_ms", "ratio_before_vs_torch", "ratio_vs_before")."""
    rows = []
    for sizes, batch, act in MLP_CASES:
        rng = np.random.default_rng(seed)
        model = actgrad.MLP(sizes, activation=act, init="he", seed=seed, dtype=np.float32)
        X = rng.standard_normal((batch, sizes[0]), dtype=np.float32)
        y = rng.integers(0, sizes[-1], size=batch)
        L = len(sizes) - 1
        Ws = [torch.tensor(model.params[f"W{l}"], requires_grad=True) for l in range(1, L + 1)]
        bs = [torch.tensor(model.params[f"b{l}"], requires_grad=True) for l in range(1, L + 1)]
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        tact = TORCH_ACT[act]

        def torch_step():
            for p in Ws + bs:
                p.grad = None
            h = Xt
            for l in range(L):
                h = torch.addmm(bs[l], h, Ws[l])
                if l < L - 1:
                    h = tact(h)
            loss = F.cross_entropy(h, yt)
            loss.backward()
            return loss

        def actgrad_step():
            return model.loss(X, y)

        # Same network, same numbers: check loss and gradients before timing.
        loss, grads = actgrad_step()
        tloss = torch_step()
        assert abs(loss - tloss.item()) <= 1e-4 * max(1.0, abs(loss)), (loss, tloss.item())
        for l in range(1, L + 1):
            np.testing.assert_allclose(grads[f"W{l}"], Ws[l - 1].grad.numpy(), rtol=2e-3, atol=2e-5)
        assert all(g.dtype == np.float32 for g in grads.values()), "actgrad gradients not float32"

        steps = {"actgrad": actgrad_step, "torch": torch_step, "floor": matmul_floor(model, X)}
        if before is not None:
            old = before.MLP(sizes, activation=act, init="he", seed=seed, dtype=np.float32)
            old_loss, _ = old.loss(X, y)
            assert abs(old_loss - loss) <= 1e-5 * max(1.0, abs(loss)), ("before and now disagree", old_loss, loss)
            steps["before"] = lambda: old.loss(X, y)
        t = side_by_side(steps, rounds=rounds)
        floor_best, floor_median = t["floor"]["best"], t["floor"]["median"]
        flops = step_flops(sizes, batch)
        rows.append({
            "case": f"{sizes} N={batch} {act}",
            "actgrad_ms": 1e3 * t["actgrad"]["best"], "torch_ms": 1e3 * t["torch"]["best"],
            "ratio_vs_torch": t["actgrad"]["best"] / t["torch"]["best"],
            "ratio_vs_torch_median": t["actgrad"]["median"] / t["torch"]["median"],
            "matmul_floor_ms": 1e3 * floor_best,
            "ratio_vs_floor": t["actgrad"]["best"] / floor_best,
            "ratio_vs_floor_median": t["actgrad"]["median"] / floor_median,
            "matmul_gflops": flops / floor_best / 1e9,
            "step_flops": flops,
        })
        if before is not None:
            rows[-1].update({
                "before_ms": 1e3 * t["before"]["best"],
                "ratio_before_vs_torch": t["before"]["best"] / t["torch"]["best"],
                "ratio_vs_before": t["actgrad"]["best"] / t["before"]["best"],
                "ratio_vs_before_median": t["actgrad"]["median"] / t["before"]["median"],
            })
    return rows


def bench_activations(n=10**6, rounds=11, seed=0):
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal(n)).astype(np.float32)
    xt = torch.from_numpy(x.copy())
    cases = [(name, {}) for name in ACTIVATIONS] + [("gelu", {"approximate": "tanh"})]
    rows = []
    for name, kw in cases:
        rec, tfn = ACTIVATIONS[name], TORCH_ACT[name]
        label = name + ("(tanh)" if kw else "")
        # forward
        ours, theirs = rec.fn(x, **kw), tfn(xt, **kw)
        assert ours.dtype == np.float32, (name, ours.dtype)
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-4, atol=1e-5, err_msg=label)
        fwd = side_by_side({"actgrad": lambda: rec.fn(x, **kw), "torch": lambda: tfn(xt, **kw)},
                           rounds=rounds)
        # derivative: actgrad's f'(x) vs torch autograd's backward (grad_output = 1)
        xg = xt.clone().requires_grad_(True)
        yg = tfn(xg, **kw)
        ones = torch.ones_like(yg)
        yg.backward(ones, retain_graph=True)
        np.testing.assert_allclose(rec.prime(x, **kw), xg.grad.numpy(), rtol=1e-3, atol=1e-5,
                                   err_msg=label + "'")

        def torch_backward():
            xg.grad = None
            yg.backward(ones, retain_graph=True)

        bwd = side_by_side({"actgrad": lambda: rec.prime(x, **kw), "torch": torch_backward},
                           rounds=rounds)
        rows.append({
            "activation": label,
            "fwd_actgrad_ms": 1e3 * fwd["actgrad"]["best"], "fwd_torch_ms": 1e3 * fwd["torch"]["best"],
            "fwd_ratio": fwd["actgrad"]["best"] / fwd["torch"]["best"],
            "bwd_actgrad_ms": 1e3 * bwd["actgrad"]["best"], "bwd_torch_ms": 1e3 * bwd["torch"]["best"],
            "bwd_ratio": bwd["actgrad"]["best"] / bwd["torch"]["best"],
        })
    # softmax over rows of a (1000, 1000) batch: forward, and the VJP given the output
    X2 = x.reshape(1000, 1000)
    X2t = torch.from_numpy(X2.copy())
    s = actgrad.activations.softmax(X2)
    g = rng.standard_normal(X2.shape).astype(np.float32)
    np.testing.assert_allclose(s, torch.softmax(X2t, -1).numpy(), rtol=1e-4, atol=1e-6)
    fwd = side_by_side({"actgrad": lambda: actgrad.activations.softmax(X2),
                        "torch": lambda: torch.softmax(X2t, -1)}, rounds=rounds)
    xg = X2t.clone().requires_grad_(True)
    yg = torch.softmax(xg, -1)
    gt = torch.from_numpy(g)

    def torch_backward():
        xg.grad = None
        yg.backward(gt, retain_graph=True)

    torch_backward()
    np.testing.assert_allclose(actgrad.activations.softmax_backward(g, s), xg.grad.numpy(),
                               rtol=1e-3, atol=1e-5)
    bwd = side_by_side({"actgrad": lambda: actgrad.activations.softmax_backward(g, s),
                        "torch": torch_backward}, rounds=rounds)
    rows.append({
        "activation": "softmax (1000x1000)",
        "fwd_actgrad_ms": 1e3 * fwd["actgrad"]["best"], "fwd_torch_ms": 1e3 * fwd["torch"]["best"],
        "fwd_ratio": fwd["actgrad"]["best"] / fwd["torch"]["best"],
        "bwd_actgrad_ms": 1e3 * bwd["actgrad"]["best"], "bwd_torch_ms": 1e3 * bwd["torch"]["best"],
        "bwd_ratio": bwd["actgrad"]["best"] / bwd["torch"]["best"],
    })
    return rows
