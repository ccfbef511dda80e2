"""Time the Bayesian engine's models under nutpie and PyMC's default NUTS, side by side.

Usage::

    nice -n 5 python benchmarks/bench_bayes.py                 # nutpie only
    nice -n 5 python benchmarks/bench_bayes.py --pymc          # also PyMC NUTS (slow here)
    python benchmarks/bench_bayes.py --models model_level --repeats 3

For each model (default model-level on ``data/synthetic_families.csv``: 3 families x 8 models x
400 examples; crossed on a simulated 3 x 8 x 500 set) and sampler it prints the first call in
this process (compile + sampling + post-processing), the second call (compiled model cached),
the divergences, max R-hat, min bulk/tail ESS, the target acceptance (each model's default) and
the 1-minute load average, and the ratio of each sampler's time to nutpie's, measured in the
same run. numpyro is timed too when installed (through ``pm.sample(nuts_sampler="numpyro")``).
Figures and the command go into ``docs/bayes.md``.
"""

from __future__ import annotations

import argparse
import os
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
    from scalingfit.bayes import _Crossed, _default_target_accept, _Design, _ModelLevel
    from scalingfit.data import model_scores

    table = load_results(data)
    ms = model_scores(table)
    des = _Design(ms)
    eng = (_ModelLevel if model == "model_level" else _Crossed)(ms, des, table)
    m = eng.build()
    with m:
        pm.set_data(eng.data())
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = pm.sample(1000, tune=1000, chains=4, nuts_sampler="numpyro",
                              random_seed=1, progressbar=False,
                              target_accept=_default_target_accept(eng))
    return {"wall": time.perf_counter() - t0, "div": int(idata.sample_stats.diverging.sum())}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["model_level", "crossed"],
                   choices=["model_level", "crossed"])
    p.add_argument("--pymc", action="store_true",
                   help="also time PyMC's default NUTS (minutes per fit on this machine)")
    p.add_argument("--repeats", type=int, default=2, help="calls per model and sampler")
    p.add_argument("--compare", action="store_true",
                   help="include the LOO comparison (a second, linear fit)")
    args = p.parse_args(argv)

    from scalingfit.simulate import simulate_results

    datasets = {"model_level": str(ROOT / "data" / "synthetic_families.csv"),
                "crossed": simulate_results("inverse", n_families=3, n_models=8,
                                            n_examples=500, effect=1.0, rng=3)}
    samplers = ["nutpie"] + (["pymc"] if args.pymc else [])
    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f}; 4 chains x 1000 draws "
          "(1000 warm-up), cores=2", flush=True)
    print(f"{'model':12} {'sampler':8} {'call':>4} {'wall_s':>7} {'compile_s':>9} "
          f"{'sample_s':>8} {'div':>4} {'rhat':>6} {'ess':>6} {'t_acc':>5} {'load':>5} shape "
          "(ess: min bulk/tail over the monitored parameters)", flush=True)
    for model in args.models:
        first = {}
        for sampler in samplers:
            for call in range(args.repeats):
                res = _fit(datasets[model], model, sampler, call, compare=args.compare)
                first.setdefault(sampler, res)
                print(f"{model:12} {sampler:8} {call + 1:>4} {res['wall']:7.1f} "
                      f"{res['compile']:9.1f} {res['sample']:8.1f} {res['div']:>4} "
                      f"{res['rhat']:6.3f} {res['ess']:6.0f} {res['ta']:5.2f} "
                      f"{os.getloadavg()[0]:5.2f} {res['shape']}", flush=True)
        try:
            import numpyro  # noqa: F401
        except ImportError:
            print(f"{model:12} numpyro  not installed", flush=True)
        else:
            res = _numpyro_time(datasets[model], model)
            print(f"{model:12} numpyro  {res['wall']:7.1f} s (compile+sample), "
                  f"{res['div']} divergences", flush=True)
        if "pymc" in first:
            ratio = first["pymc"]["sample"] / max(first["nutpie"]["sample"], 1e-9)
            print(f"{model:12} sampling-time ratio pymc/nutpie = {ratio:.1f}", flush=True)


if __name__ == "__main__":
    main()
