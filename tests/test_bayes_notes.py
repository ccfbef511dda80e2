"""The Bayesian engine's sampler notes (R-hat, ESS, divergences, E-BFMI): each code fires on
synthetic draws built to fail it, and none fires on well-mixed draws. No sampling: the draws are
made with numpy, so the thresholds themselves are tested (arviz computes the statistics)."""

import numpy as np

from scalingfit.bayes.sampling import sampler_notes as _sampler_notes

CHAINS, DRAWS = 4, 1000


def _idata(theta, *, diverging=None, energy=None):
    import arviz as az

    stats = {"diverging": np.zeros((CHAINS, DRAWS), bool) if diverging is None else diverging}
    if energy is not None:
        stats["energy"] = energy
    return az.from_dict(posterior={"sd": theta}, sample_stats=stats)


def _codes(idata):
    notes, details = _sampler_notes(idata, "test", ["sd"])
    return {n["code"] for n in notes}, details


def _good(rng):
    return rng.standard_normal((CHAINS, DRAWS))


def test_well_mixed_draws_give_no_note():
    rng = np.random.default_rng(0)
    # iid energies: E-BFMI = E[(dE)^2] / Var(E) is about 2 for white noise
    codes, details = _codes(_idata(_good(rng), energy=rng.standard_normal((CHAINS, DRAWS))))
    assert codes == set()
    assert details["max_rhat"] < 1.01 and details["min_ess_bulk"] > 3000


def test_chains_that_disagree_fire_rhat():
    rng = np.random.default_rng(1)
    theta = _good(rng) + np.array([0.0, 0.0, 0.0, 3.0])[:, None]   # one chain stuck elsewhere
    codes, details = _codes(_idata(theta))
    # rank-normalised split R-hat of a 3-SD shift in one of four chains is about 1.47
    assert "bayes_rhat" in codes and details["max_rhat"] > 1.2


def test_autocorrelated_draws_fire_low_ess():
    rng = np.random.default_rng(2)
    # AR(1) with phi = 0.99: ESS per chain ~ n (1 - phi) / (1 + phi) = 5, far below 400 in all
    theta = np.empty((CHAINS, DRAWS))
    theta[:, 0] = rng.standard_normal(CHAINS)
    for t in range(1, DRAWS):
        theta[:, t] = 0.99 * theta[:, t - 1] + np.sqrt(1 - 0.99**2) * rng.standard_normal(CHAINS)
    codes, details = _codes(_idata(theta))
    assert "bayes_low_ess" in codes and details["min_ess_bulk"] < 400


def test_divergences_are_counted():
    rng = np.random.default_rng(3)
    div = np.zeros((CHAINS, DRAWS), bool)
    div[1, [5, 50, 500]] = True
    codes, details = _codes(_idata(_good(rng), diverging=div))
    assert "bayes_divergences" in codes and details["divergences"] == 3


def test_slowly_wandering_energy_fires_low_bfmi():
    rng = np.random.default_rng(4)
    # a random walk's increments are small next to its spread: E-BFMI << 0.3
    energy = np.cumsum(rng.standard_normal((CHAINS, DRAWS)), axis=1)
    codes, details = _codes(_idata(_good(rng), energy=energy))
    assert "bayes_low_bfmi" in codes and details["min_bfmi"] < 0.3
