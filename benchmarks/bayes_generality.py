"""How often the Bayesian engine's generality figure reaches 0.95, beside the pooled verdicts.

On one calibration cell (``benchmarks/calibration.py``: 8 models per family, 300 examples,
identity link, seed 20240607), for each simulated set: the Bayesian pooled verdict, whether
``pooled['p_all_inverse'] >= 0.95`` (every family inverse, jointly), and the bootstrap engine's
pooled verdict. Figures go into docs/bayes.md ("Pooled and new family").

Usage::

    python benchmarks/bayes_generality.py --truth monotone --families 2 --model-sd 0.03
    python benchmarks/bayes_generality.py --truth monotone --families 2 --model-sd 0
    python benchmarks/bayes_generality.py --truth flat --families 2 --model-sd 0.03
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None):
    import calibration as cal

    from scalingfit import fit_trend

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--truth", default="monotone", choices=list(cal.TRUTHS))
    p.add_argument("--families", type=int, default=2)
    p.add_argument("--models", type=int, default=8)
    p.add_argument("--model-sd", type=float, default=0.03)
    p.add_argument("--reps", type=int, default=20)
    args = p.parse_args(argv)
    calls = []
    for rep in range(args.reps):
        df = cal.simulate(args.truth, args.models, args.families, args.model_sd, 20240607, rep)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bayes = fit_trend(df, method="bayes", rng=rep, n_boot=200)
            boot = fit_trend(df, rng=rep, n_boot=200)
        calls.append((bayes.shape == "inverse", bayes.pooled["p_all_inverse"] >= 0.95,
                      boot.shape == "inverse"))
        print(f"set {rep:2d}: bayes {bayes.shape:12} P(inverse) {bayes.pooled['p_inverse']:.3f} "
              f"P(every family inverse) {bayes.pooled['p_all_inverse']:.3f}; "
              f"bootstrap {boot.shape}", flush=True)
    c = np.array(calls).sum(axis=0)
    print(f"{args.truth}, {args.families} x {args.models} models, model SD {args.model_sd:g}, "
          f"{args.reps} sets: Bayesian pooled inverse {c[0]}, P(every family inverse) >= 0.95 "
          f"{c[1]}, bootstrap pooled inverse {c[2]}")


if __name__ == "__main__":
    main()
