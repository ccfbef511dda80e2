"""Time the Bayesian engine's models under nutpie and PyMC's default NUTS, side by side.

Usage::

    nice -n 5 python benchmarks/bench_bayes.py                 # nutpie only
    nice -n 5 python benchmarks/bench_bayes.py --pymc          # also PyMC NUTS (slow here)
    python benchmarks/bench_bayes.py --models model_level --repeats 3

For each model (default model-level on ``data/synthetic_families.csv``: 3 families x 8 models x
400 examples; crossed on a simulated 3 x 8 x 500 set) and way of sampling it runs a fresh
process and prints its first call (every compile + sampling + post-processing), the later calls
(compiled model cached), the divergences, max R-hat, min bulk/tail ESS, the target acceptance
(each model's default) and the 1-minute load average (the benchmark's own threads included).
For each model: the numba kernel nutpie samples by default (with numba's disk cache, and with an
empty one: the first call on a new machine) against the naive way, nutpie compiling the PyMC
model, with the wall-time ratios measured in the same run. numpyro is timed too when installed (through ``pm.sample(nuts_sampler="numpyro")``).
Figures and the command go into ``docs/bayes.md``.

``--divergence-rate N`` instead measures how often the crossed fit of
``tests/test_bayes.py::test_crossed_model_on_several_families_converges_and_compares`` (3
families x 6 models x 200 examples, the test's data set, 4 x 1,000 draws) has a divergent
transition, over N sampler seeds (100, 101, ...) at each ``--target-accept`` (issue 17)::

    nice -n 5 python benchmarks/bench_bayes.py --divergence-rate 40 --target-accept 0.9 0.95
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fit(data, model, sampler, seed, compare):
    from scalingfit import fit_trend

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        r = fit_trend(data, method="bayes", model=model, sampler=sampler, rng=seed,
                      compare=compare, n_boot=200)
    wall = time.perf_counter() - t0
    b = r.meta["bayes"]
    return {"wall": wall, "compile": b["compile_s"], "sample": b["sample_s"],
            "div": b["divergences"], "rhat": b["max_rhat"],
            "ess": min(b["min_ess_bulk"], b["min_ess_tail"]), "ta": b["target_accept"],
            "shape": r.shape}


def _numpyro_time(data, model):
    """The same PyMC model (model-level or crossed) sampled by numpyro through
    ``pm.sample(nuts_sampler="numpyro")``; no compile cache of ours, so compile + sampling."""
    import pymc as pm

    from scalingfit import load_results
    from scalingfit.bayes.engines import ENGINES
    from scalingfit.bayes.models import Design
    from scalingfit.bayes.sampling import default_target_accept
    from scalingfit.data import model_scores

    table = load_results(data)
    ms = model_scores(table)
    eng = ENGINES[model](ms, Design(ms), table)
    m = eng.build()
    with m:
        pm.set_data(eng.data())
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = pm.sample(1000, tune=1000, chains=4, nuts_sampler="numpyro",
                              random_seed=1, progressbar=False,
                              target_accept=default_target_accept(eng))
    return {"wall": time.perf_counter() - t0, "div": int(idata.sample_stats.diverging.sum())}


#: (label, fit_bayes sampler, how nutpie gets the model-level log density, fresh numba cache)
_CONFIGS = {
    "model_level": [("kernel", "nutpie", "kernel", False),
                    ("kernel, no disk cache", "nutpie", "kernel", True),
                    ("nutpie compile of the PyMC model", "nutpie", "pymc_numba", False)],
    "crossed": [("kernel", "nutpie", "kernel", False),
                ("kernel, no disk cache", "nutpie", "kernel", True),
                ("nutpie compile of the PyMC model", "nutpie", "pymc_numba", False)],
}


def _use_pymc_numba():
    """The naive way, for the ratio: nutpie compiles the PyMC model (numba, every process)."""
    from scalingfit.bayes import engines, sampling

    for engine in engines.ENGINES.values():
        engine.nutpie_model = lambda self: sampling.require_nutpie().compile_pymc_model(
            self.build())


def _worker(model, sampler, backend, repeats, compare):
    """One configuration in this (fresh) process; one line per call."""
    from scalingfit.simulate import simulate_results

    if backend == "pymc_numba":
        _use_pymc_numba()
    data = (str(ROOT / "data" / "synthetic_families.csv") if model == "model_level" else
            simulate_results("inverse", n_families=3, n_models=8, n_examples=500, effect=1.0,
                             rng=3))
    for call in range(repeats):
        res = _fit(data, model, sampler, call, compare=compare)
        print(f"{call + 1} {res['wall']:.2f} {res['compile']:.2f} {res['sample']:.2f} "
              f"{res['div']} {res['rhat']:.4f} {res['ess']:.0f} {res['ta']:.2f} "
              f"{os.getloadavg()[0]:.2f} {res['shape']}", flush=True)


def _run_config(model, label, sampler, backend, fresh_cache, args):
    env = dict(os.environ)
    if fresh_cache:
        env["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-cold-")
    cmd = [sys.executable, __file__, "--worker", model, sampler, str(backend), str(args.repeats)]
    out = subprocess.run(cmd + (["--compare"] if args.compare else []), env=env, text=True,
                         capture_output=True, check=True).stdout
    rows = [line.split() for line in out.splitlines() if line[:1].isdigit()]
    for r in rows:
        print(f"{model:12} {label:34} {r[0]:>4} {float(r[1]):7.1f} {float(r[2]):9.1f} "
              f"{float(r[3]):8.1f} {r[4]:>4} {float(r[5]):6.3f} {r[6]:>6} {r[7]:>5} {r[8]:>5} "
              f"{r[9]}", flush=True)
    return [float(r[1]) for r in rows]


def divergence_rate(n_seeds, target_accepts, first_seed=100):
    """Fits with >= 1 divergence over ``n_seeds`` seeds, per target acceptance: one line per
    fit, then the rate with its binomial SE and exact (Clopper-Pearson) 95% upper bound."""
    import numpy as np
    from scipy import stats

    from scalingfit import fit_trend
    from scalingfit.simulate import simulate_results

    df = simulate_results("inverse", n_families=3, n_models=6, n_examples=200, effect=1.5,
                          model_sd=0.1, rng=23)
    for ta in target_accepts:
        fits = []
        for seed in range(first_seed, first_seed + n_seeds):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                r = fit_trend(df, method="bayes", model="crossed", rng=seed, n_boot=200,
                              target_accept=ta)
            b, ss = r.meta["bayes"], r.posterior.sample_stats
            fits.append((b["divergences"], float(ss["n_steps"].mean()), b["max_rhat"],
                         time.perf_counter() - t0))
            print(f"target_accept {ta:.3g} seed {seed}: {b['divergences']} divergences, "
                  f"{fits[-1][1]:.1f} leapfrog steps per draw, max R-hat {b['max_rhat']:.4f}, "
                  f"{fits[-1][3]:.1f} s", flush=True)
        div = np.array([f[0] for f in fits])
        k, n = int((div > 0).sum()), len(div)
        p = k / n
        upper = stats.beta.ppf(0.95, k + 1, n - k) if k < n else 1.0
        print(f"target_accept {ta:.3g}: fits with a divergence {k}/{n} = {p:.3f} (SE "
              f"{np.sqrt(p * (1 - p) / n):.3f}; one-sided 95% upper bound {upper:.3f}); "
              f"{div.sum()} divergent of {n * 4000} draws; {np.mean([f[1] for f in fits]):.1f} "
              f"leapfrog steps per draw; max R-hat {max(f[2] for f in fits):.4f}; "
              f"{np.mean([f[3] for f in fits]):.1f} s per fit", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["model_level", "crossed"],
                   choices=["model_level", "crossed"])
    p.add_argument("--pymc", action="store_true",
                   help="also time PyMC's default NUTS (minutes per fit on this machine)")
    p.add_argument("--repeats", type=int, default=2, help="calls per model and sampler")
    p.add_argument("--compare", action="store_true",
                   help="include the LOO comparison (a second, linear fit)")
    p.add_argument("--default-only", action="store_true",
                   help="time only the default way (the kernel, disk cache as it is)")
    p.add_argument("--divergence-rate", type=int, metavar="N",
                   help="measure the crossed test fit's divergence rate over N seeds")
    p.add_argument("--target-accept", type=float, nargs="+", default=[0.9, 0.95],
                   help="target acceptance rates for --divergence-rate")
    p.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.divergence_rate:
        return divergence_rate(args.divergence_rate, args.target_accept)
    if args.worker:
        model, sampler, backend, repeats = args.worker
        return _worker(model, sampler, None if backend == "None" else backend, int(repeats),
                       args.compare)

    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f}; 4 chains x 1000 draws "
          "(1000 warm-up); each configuration in a fresh process, so call 1 includes every "
          "compile", flush=True)
    print(f"{'model':12} {'how':34} {'call':>4} {'wall_s':>7} {'compile_s':>9} "
          f"{'sample_s':>8} {'div':>4} {'rhat':>6} {'ess':>6} {'t_acc':>5} {'load':>5} shape "
          "(ess: min bulk/tail over the monitored parameters)", flush=True)
    for model in args.models:
        configs = list(_CONFIGS[model])[:1 if args.default_only else None]
        if args.pymc:
            configs.append(("PyMC NUTS", "pymc", None, False))
        walls = {label: _run_config(model, label, sampler, backend, fresh, args)
                 for label, sampler, backend, fresh in configs}
        base = walls.get("nutpie compile of the PyMC model", [])
        for label, w in walls.items() if base else ():
            if label != "nutpie compile of the PyMC model":
                print(f"{model:12} wall-time ratio, PyMC model compiled by nutpie / {label}: "
                      + ", ".join(f"call {i + 1} {b / a:.1f}x" for i, (a, b)
                                  in enumerate(zip(w, base))), flush=True)
        try:
            import numpyro  # noqa: F401
        except ImportError:
            print(f"{model:12} numpyro  not installed", flush=True)
        else:
            res = _numpyro_time(datasets_for(model), model)
            print(f"{model:12} numpyro  {res['wall']:7.1f} s (compile+sample), "
                  f"{res['div']} divergences", flush=True)


def datasets_for(model):
    from scalingfit.simulate import simulate_results

    return (str(ROOT / "data" / "synthetic_families.csv") if model == "model_level" else
            simulate_results("inverse", n_families=3, n_models=8, n_examples=500, effect=1.0,
                             rng=3))


if __name__ == "__main__":
    main()
