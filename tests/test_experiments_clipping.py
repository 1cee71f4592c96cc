"""Chapter 10's conclusions, asserted across five seeds through actgrad.experiments.clipping_study.

Oracles: ln 10 (the cross-entropy of a uniform guess over 10 classes), the closed-form update
length eta * c of a clipped SGD step, NumPy's percentile of the healthy runs' raw norms, and the
book's divergence rule applied independently to each run's epoch losses.
"""
import math

import numpy as np
import pytest

from actgrad import experiments as E

SEEDS = (0, 1, 2, 3, 4)
LR = 0.05
LN10 = math.log(10)


@pytest.fixture(scope="module")
def study():
    return E.clipping_study(seeds=SEEDS, epochs=5, lr=LR)


def test_threshold_is_the_95th_percentile_of_the_healthy_runs(study):
    pooled = np.concatenate([r.grad_norm[np.isfinite(r.grad_norm)] for r in study.runs["He"]])
    assert study.threshold == pytest.approx(np.percentile(pooled, 95)), \
        f"clipping_study threshold {study.threshold} is not the 95th percentile of the He runs' raw norms"
    frac = study.summary("He + clip c")["clip_fraction"]
    assert np.all((frac > 0.02) & (frac < 0.10)), \
        f"clipping the healthy net at its 95th percentile should be active on ~5% of steps, got {frac}"


def test_loss_at_initialisation_against_ln10(study):
    for label in ("He", "sigmoid"):
        init = study.summary(label)["init_loss"]
        assert np.all(np.abs(init / LN10 - 1) < 0.2), \
            f"{label}: loss at init {init} should be within 20% of ln 10 = {LN10:.3f} (small logits, uniform guess)"
    big = study.summary("He x1.5")["init_loss"]
    assert np.all(big > 10 * LN10), \
        f"He x1.5: loss at init {big} should already exceed 10 ln 10 (logits scaled by ~1.5^11)"


def test_exploding_net_diverges_on_every_seed_with_or_without_weight_decay(study):
    for label in ("He x1.5", "He x1.5 + weight decay"):
        for seed, r in zip(SEEDS, study.runs[label]):
            assert r.diverged and E.diverged(r.train_loss[1:]), \
                f"{label}, seed {seed}: expected divergence by the book's rule, epoch losses {r.train_loss}"
            assert np.sum(np.isfinite(r.loss)) < 20, \
                f"{label}, seed {seed}: expected a non-finite loss within 20 steps, got {np.sum(np.isfinite(r.loss))}"


def test_every_clipped_or_well_initialised_run_is_stable(study):
    for label in ("He", "He + clip c", "He x1.5 + clip 1", "He x1.5 + clip c", "He x1.5 + clip value 0.1"):
        div = study.summary(label)["diverged"]
        assert not div.any(), f"{label}: expected no divergence on any seed, got {div}"


def test_clip_1_clips_every_step_so_it_is_normalised_sgd(study):
    for seed, r in zip(SEEDS, study.runs["He x1.5 + clip 1"]):
        assert r.clip_fraction() > 0.98, \
            f"seed {seed}: clip norm 1 on the exploding net should be active on ~every step, got {r.clip_fraction():.3f}"
        on = r.clipped == 1
        # a clipped plain-SGD step has length eta * c * ||g|| / (||g|| + 1e-6)
        expected = LR * 1.0 * r.grad_norm[on] / (r.grad_norm[on] + 1e-6)
        np.testing.assert_allclose(r.update_norm[on], expected, rtol=1e-9,
                                   err_msg=f"seed {seed}: clipped update lengths are not eta*c")


def test_p95_clipping_of_the_exploding_net_is_no_rare_safety_net(study):
    frac = study.summary("He x1.5 + clip c")["clip_fraction"]
    assert np.all(frac > 0.2), f"He x1.5 clipped at the healthy p95: expected active on >20% of steps, got {frac}"


def test_clipping_does_not_buy_accuracy_in_the_control(study):
    free, clip = study.summary("He"), study.summary("He + clip c")
    d_best = clip["best_acc"] - free["best_acc"]
    sem = d_best.std(ddof=1) / math.sqrt(len(d_best))
    assert abs(d_best.mean()) < max(0.05, 2 * sem), \
        f"same net with/without clipping: best-epoch accuracy differs by {d_best} (mean {d_best.mean():.3f})"
    d_final = clip["final_acc"] - free["final_acc"]
    assert d_final.max() > 0.05 and d_final.min() < -0.05, \
        f"the text says seeds disagree on the final-epoch effect of clipping; paired differences {d_final}"


def test_fixing_the_init_versus_clipping_the_exploding_net(study):
    he, c1, cc = (study.summary(k)["best_acc"] for k in ("He", "He x1.5 + clip 1", "He x1.5 + clip c"))
    assert c1.mean() < he.mean() - he.std(), \
        f"best accuracy: He {he} should beat He x1.5 + clip 1 {c1} on average by more than He's seed spread"
    assert abs(cc.mean() - he.mean()) < max(he.std(), cc.std()), \
        f"best accuracy: He x1.5 + clip c {cc} and He {he} should agree within the seed spread"


def test_clipping_is_inert_when_gradients_vanish(study):
    for seed, a, b in zip(SEEDS, study.runs["sigmoid"], study.runs["sigmoid + clip c"]):
        assert b.clip_fraction() == 0.0, f"sigmoid, seed {seed}: clipping was active on {b.clip_fraction():.3f}"
        np.testing.assert_array_equal(a.loss, b.loss, err_msg=f"sigmoid, seed {seed}: clipping changed the run")
        assert np.nanmedian(a.first_grad_norm) < 1e-4, \
            f"sigmoid, seed {seed}: first-layer gradient should be tiny, got {np.nanmedian(a.first_grad_norm):.2e}"
        assert a.best_accuracy() < 0.15, f"sigmoid, seed {seed}: expected chance accuracy, got {a.best_accuracy()}"


def test_threshold_from_healthy_rejects_clipped_or_diverged_runs(study):
    with pytest.raises(ValueError, match="threshold_from_healthy"):
        E.threshold_from_healthy(study.runs["He + clip c"])
    with pytest.raises(ValueError, match="threshold_from_healthy"):
        E.threshold_from_healthy(study.runs["He x1.5"])
    with pytest.raises(TypeError, match="threshold_from_healthy"):
        E.threshold_from_healthy([])
    with pytest.raises(ValueError, match="threshold_from_healthy"):
        E.threshold_from_healthy(study.runs["He"], q=100)
