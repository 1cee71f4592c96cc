"""Chapter 9's dead-unit experiments: the batched trainer against PyTorch autograd, and the chapter's
conclusions asserted across five seeds (so the prose and the evidence cannot drift apart).

Oracles: PyTorch autograd in float64 for the gradients; the divergence rule of
``actgrad.experiments.diverged`` (non-finite or > 10 ln K); exact facts (a centred input set cannot
switch a bias-free first-layer unit off on every example; a unit whose inputs never change and
whose gradient is 0 stays dead under plain SGD)."""
import math

import numpy as np
import pytest
import torch

from actgrad import experiments as E
from actgrad.experiments import dead as D

SEEDS = (0, 1, 2, 3, 4)
LN10 = math.log(10)


@pytest.fixture(scope="module")
def runs():
    cache = {}

    def get(activation="relu", **kw):
        key = (activation, tuple(sorted(kw.items())))
        if key not in cache:
            cache[key] = E.dead_fraction_over_seeds(activation, seeds=SEEDS, **kw)
        return cache[key]
    return get


# ----------------------------------------------------------------------------- the trainer itself
@pytest.mark.parametrize("act", ["relu", "leaky_relu", "elu", "prelu"])
def test_population_gradients_match_torch_autograd(act):
    rng = np.random.default_rng(1)
    S, N, sizes = 3, 7, [64, 6, 5, 10]
    P = {}
    for l, (i, o) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        P[f"W{l}"] = rng.normal(0, 0.5, (S, i, o))
        P[f"b{l}"] = rng.normal(0, 0.5, (S, 1, o))
        if act == "prelu" and l < len(sizes) - 1:
            P[f"a{l}"] = rng.uniform(-0.5, 1.5, (S, 1, o))
    X, y = rng.normal(size=(S, N, 64)), rng.integers(0, 10, size=(S, N))
    loss, g = D._population_grads(P, X, y, act, len(sizes) - 1)
    f = {"relu": torch.relu, "leaky_relu": lambda z: torch.nn.functional.leaky_relu(z, 0.01),
         "elu": torch.nn.functional.elu}.get(act)
    for s in range(S):
        T = {k: torch.tensor(v[s], dtype=torch.float64, requires_grad=True) for k, v in P.items()}
        a = torch.tensor(X[s])
        for l in range(1, len(sizes)):
            z = a @ T[f"W{l}"] + T[f"b{l}"]
            if l < len(sizes) - 1:
                a = torch.where(z > 0, z, T[f"a{l}"] * z) if act == "prelu" else f(z)
        want = torch.nn.functional.cross_entropy(z, torch.tensor(y[s]))
        want.backward()
        assert abs(loss[s] - want.item()) < 1e-12, \
            f"_population_grads({act}) loss of net {s}: expected {want.item()}, got {loss[s]}"
        for k, t in T.items():
            np.testing.assert_allclose(g[k][s], t.grad.numpy(), rtol=1e-9, atol=1e-12,
                                       err_msg=f"_population_grads({act}): gradient {k} of net {s} differs "
                                               "from torch autograd (hint: batched transposes, or the mean over N)")


def test_seeds_train_independently_and_single_seed_wrapper_agrees():
    kw = dict(lr=0.1, hidden=(20, 20), epochs=1)
    together = E.dead_fraction_over_seeds("relu", seeds=(0, 1, 2), **kw)
    for i, s in enumerate((0, 1, 2)):
        alone = E.dead_fraction_during_training("relu", seed=s, **kw)
        np.testing.assert_allclose(together.loss[i], alone.loss, rtol=1e-12,
                                   err_msg=f"seed {s} trained with others differs from seed {s} alone: "
                                           "the stacked nets leak into each other")
        np.testing.assert_array_equal(together.dead[i], alone.dead)
        np.testing.assert_array_equal(together.accuracy[i], alone.accuracy)


def test_diverged_runs_follow_the_stated_rule_and_are_frozen(runs):
    r = runs("elu", lr=0.5)
    limit = E.DIVERGENCE_FACTOR * LN10
    for s in range(len(SEEDS)):
        sl = r.step_loss[s]
        bad = ~np.isfinite(sl) | (sl > limit)
        assert r.diverged[s] == E.diverged(sl), f"seed {s}: diverged flag disagrees with the rule"
        first = int(np.argmax(bad))
        assert bad.any() and np.all(sl[:first] <= limit), f"seed {s}: ELU at lr 0.5 should cross 10 ln 10"
        assert np.all(np.isnan(sl[first + 1:])), f"seed {s}: a diverged run must be frozen (NaN after step {first})"
        assert np.all(np.isnan(r.dead[s, -1])), f"seed {s}: no dead fraction may be reported after divergence"


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="dead_fraction_over_seeds"):
        E.dead_fraction_over_seeds("nope")
    with pytest.raises(ValueError, match="dead_fraction_over_seeds"):
        E.dead_fraction_over_seeds("relu", seeds=())
    with pytest.raises(ValueError, match="dead_fraction_over_seeds"):
        E.dead_fraction_over_seeds("relu", lr=-1.0)


# ----------------------------------------------------------------------------- chapter 9's conclusions
def test_loss_at_initialisation_is_near_ln10_and_closer_with_centred_inputs(runs):
    raw, cen = runs("relu", lr=0.1), runs("relu", lr=0.1, center=True)
    assert np.all(np.abs(raw.loss[:, 0] - LN10) < 0.3), f"raw init loss {raw.loss[:, 0]} vs ln 10"
    assert np.all(np.abs(cen.loss[:, 0] - LN10) < 0.1), f"centred init loss {cen.loss[:, 0]} vs ln 10"


def test_large_learning_rate_kills_most_units_moderate_ones_do_not(runs):
    high = runs("relu", lr=1.0)
    ok = ~high.diverged
    assert ok.sum() >= 3, "lr 1.0: most seeds should survive to be measured"
    assert np.all(high.dead[ok, -1].mean(1) > 0.5), f"lr 1.0 dead fractions {high.dead[ok, -1].mean(1)}"
    assert np.all(high.accuracy[ok, -1] < 0.25), f"lr 1.0 accuracies {high.accuracy[ok, -1]} (chance is 0.1)"
    for lr in (0.01, 0.03, 0.1):
        r = runs("relu", lr=lr)
        assert not r.diverged.any(), f"lr {lr} diverged"
        change = np.abs(r.dead[:, -1].mean(1) - r.dead[:, 0].mean(1))
        assert np.all(r.dead[:, -1].mean(1) < 0.1) and np.all(change < 0.05), \
            f"lr {lr}: dead fraction should stay near its value at init, got change {change}"


def test_units_dead_before_training_come_from_non_centred_inputs(runs):
    raw, cen = runs("relu", lr=0.1), runs("relu", lr=0.1, center=True)
    assert np.all(raw.dead[:, 0].mean(1) > 0), f"raw pixels: dead at init {raw.dead[:, 0]}"
    assert np.all(cen.dead[:, 0, 0] == 0), \
        f"centred inputs, bias 0: no layer-1 unit can be off on every example, got {cen.dead[:, 0, 0]}"
    assert np.all(cen.dead[:, 0].mean(1) < raw.dead[:, 0].mean(1)), "centring should lower the dead fraction at init"
    assert cen.accuracy[:, -1].min() > raw.accuracy[:, -1].min(), "centring should raise the worst seed"


def test_negative_bias_kills_relu_layers_and_the_loss_stays_at_ln10(runs):
    r = runs("relu", lr=0.1, bias_init=-1.0)
    assert np.all(r.dead[:, :, 1:] == 1.0), "bias -1: layers 2-3 should be dead from the start in every seed"
    assert np.all(np.abs(r.loss - LN10) < 0.01), f"no signal reaches the logits: loss {r.loss} should stay ln 10"
    assert np.all(r.accuracy[:, -1] < 0.15)


@pytest.mark.parametrize("bias", [0.0, -0.25])
def test_first_layer_units_stay_dead_deeper_units_revive(runs, bias):
    r = runs("relu", lr=0.1, bias_init=bias)
    m1 = r.dead_mask[0]
    assert np.all(m1[:, 1:] >= m1[:, :-1]), "a dead layer-1 unit (fixed inputs, zero gradient) came back"
    revived = [(m[:, :-1].any(1) & ~m[:, -1]).sum(1) for m in r.dead_mask[1:]]
    assert np.all(sum(revived) > 0), f"bias {bias}: every seed should see deeper units revive, got {sum(revived)}"


def test_remedies_under_negative_bias(runs):
    relu, leaky = runs("relu", lr=0.1, bias_init=-1.0), runs("leaky_relu", lr=0.1, bias_init=-1.0)
    prelu, elu = runs("prelu", lr=0.1, bias_init=-1.0), runs("elu", lr=0.1, bias_init=-1.0)
    assert np.all(leaky.dead == 0) and np.all(leaky.inactive[:, -1].mean(1) > 0.5), \
        "Leaky ReLU: no exactly dead unit, but most still inactive"
    assert np.all(leaky.accuracy[:, -1] < 0.15), f"Leaky ReLU stays at chance: {leaky.accuracy[:, -1]}"
    assert np.all(prelu.accuracy[:, -1] > relu.accuracy[:, -1] + 0.2), "PReLU recovers partly in every seed"
    assert np.all(elu.accuracy[:, -1] > 0.75), f"ELU recovers in every seed: {elu.accuracy[:, -1]}"


def test_learning_rate_half_is_too_large_for_every_activation(runs):
    relu, leaky = runs("relu", lr=0.5), runs("leaky_relu", lr=0.5)
    prelu, elu = runs("prelu", lr=0.5), runs("elu", lr=0.5)
    assert elu.diverged.all() and prelu.diverged.all(), "ELU and PReLU diverge at lr 0.5 in every seed"
    assert relu.diverged.any() and leaky.diverged.any(), "ReLU and Leaky ReLU diverge in some seeds"
    # the seeds disagree on which of ReLU and Leaky ReLU copes better
    score = lambda r: np.where(r.diverged, -1.0, r.accuracy[:, -1])
    diff = score(leaky) - score(relu)
    assert (diff > 0).any() and (diff < 0).any(), f"expected seeds to disagree, leaky - relu per seed {diff}"


def test_prelu_slopes_leave_zero_one_before_divergence(runs):
    r = runs("prelu", lr=0.5)
    limit = E.DIVERGENCE_FACTOR * LN10
    for s in range(len(SEEDS)):
        first = int(np.argmax(~np.isfinite(r.step_loss[s]) | (r.step_loss[s] > limit)))
        a = r.slopes[s, :first + 1]
        assert a.min() < 0 and a.max() > 1, f"seed {s}: slopes in [{a.min()}, {a.max()}] before divergence"


# ----------------------------------------------------------------------------- chapter 15's conclusions
@pytest.fixture(scope="module")
def adaptive_runs():
    from actgrad.experiments import outlook
    return {a: outlook.train_recording_slopes(a, seeds=SEEDS) for a in ("prelu", "relu", "leaky_relu")}


def test_outlook_runs_start_near_ln10_and_none_diverge(adaptive_runs):
    for a, r in adaptive_runs.items():
        assert np.all(np.abs(r.init_loss - LN10) < 0.6), f"{a}: loss at init {r.init_loss} vs ln 10"
        assert not r.diverged.any(), f"{a}: a run diverged at lr 0.1 with momentum 0.9"


def test_prelu_slopes_move_up_and_spread_first_layer_largest(adaptive_runs):
    final = adaptive_runs["prelu"].slopes[:, -1]          # (seeds, layers, units)
    assert np.all(adaptive_runs["prelu"].slopes[:, 0] == 0.25), "slopes must start at PyTorch's 0.25"
    assert np.all(final.mean(axis=2) > 0.25), f"mean slopes per seed and layer {final.mean(axis=2)}"
    assert np.all(final.std(axis=2) > 0.05), "the slopes should spread out unit by unit"
    assert np.all(final[:, 0].mean(1) > final[:, 1:].mean(2).max(1)), "layer 1's mean slope is the largest in every seed"


def test_prelu_brings_no_consistent_gain_over_relu(adaptive_runs):
    acc = {a: r.accuracy[:, -1] for a, r in adaptive_runs.items()}
    spread = max(v.std() for v in acc.values())
    assert abs(acc["prelu"].mean() - acc["relu"].mean()) < 2 * spread, f"accuracies {acc}"
    assert not np.all(acc["prelu"] > acc["relu"]), "PReLU beat ReLU in every seed: the chapter says it does not"


def test_swish_beta_grows_above_one_in_both_layers_in_every_seed():
    from actgrad.experiments import outlook
    sw = outlook.train_swish_beta(seeds=SEEDS)
    assert np.all(np.abs(sw.init_loss - math.log(3)) < 0.3), f"loss at init {sw.init_loss} vs ln 3"
    assert np.all(sw.beta[:, 0] == 1.0) and np.all(sw.beta[:, -1] > 1.0), f"final betas {sw.beta[:, -1]}"
    assert np.all(sw.accuracy > 0.95), f"training accuracy {sw.accuracy}"
