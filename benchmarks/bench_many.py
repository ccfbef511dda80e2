"""Many curves at once: a serial loop of ``fit_trend`` against ``fit_many`` (1 and 2 workers).

Prints wall times and the ratios measured in the same run (a loaded machine slows every arm
alike; compare ratios, not seconds across runs). The serial loop runs the **reference** code
(default: the commit where this branch left ``main``, i.e. before the speed work of issue 13
item 5), extracted with ``git archive`` and timed in a subprocess on the same table and seeds;
``fit_many`` runs this checkout. Screens, for

* a simulated 65-task x 4-family aggregated screen (8 models a family, 1,000 examples a score);
* the real-data figure: the 46 tasks x 3 pretraining corpora of the open_lm testbed (Gadre et
  al. 2024; the compute-optimal slice, 6 sizes a corpus), read from
  ``../shared/data/gadre_open_lm_testbed.csv`` beside the repository (or ``--gadre PATH``);
* one ``fit_trend`` on 3 families x 8 models x 1,000 examples (per-example), ``n_boot=2000``.

Targets of issue 13 (the speed phase): fit_trend 3 x 8 x 1,000 <= 0.2 s; the 65-task screen
>= 3x faster than the serial loop with ``n_jobs=1``, >= 1.7x more with ``n_jobs=2`` on 2 cores,
and <= 10 s. ``--profile`` prints where one per-example and one aggregated fit spend their time
(cProfile, top functions by own time, and the number of scalar REML searches).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_many.py [--n-boot 2000] [--tasks 65] [--profile]
        [--reference REF]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_fit import default_reference, reference_tree, run_in, uptime  # noqa: E402
from scalingfit import fit_trend  # noqa: E402
from scalingfit.many import fit_many, group_seed, split_groups  # noqa: E402
from scalingfit.simulate import simulate_results  # noqa: E402

GADRE = ROOT.parent / "shared" / "data" / "gadre_open_lm_testbed.csv"
SHAPES = ("inverse", "positive", "flat", "flat", "positive")


def simulated_screen(n_tasks=65, n_families=4, n_models=8, n=1000, rng=0) -> pd.DataFrame:
    """Aggregated accuracy rows of ``n_tasks`` tasks with known shapes."""
    rng = np.random.default_rng(rng)
    lx = np.linspace(8.0, 11.0, n_models)
    slope = {"inverse": -0.05, "positive": 0.05, "flat": 0.0}
    rows = []
    for t in range(n_tasks):
        b = slope[SHAPES[t % len(SHAPES)]]
        for f in range(n_families):
            p = rng.uniform(0.45, 0.65) + b * (lx - lx.mean()) + rng.normal(0, 0.01, n_models)
            acc = rng.binomial(n, np.clip(p, 0.02, 0.98)) / n
            rows += [{"task": f"task{t:02d}", "family": f"fam{f}", "model": f"fam{f}-{j}",
                      "n_params": float(10 ** lx[j]), "metric": "accuracy", "score": acc[j],
                      "n": n} for j in range(n_models)]
    return pd.DataFrame(rows)


def gadre_screen(path: Path) -> pd.DataFrame | None:
    """The open_lm testbed's compute-optimal models: 46 tasks x 3 corpora x 6 sizes."""
    if not path.exists():
        return None
    g = pd.read_csv(path)
    g = g[g["chinchilla_multiplier"] == 1.0]
    return g.assign(chance=g["random_baseline_pct"] / 100.0, metric="accuracy")[
        ["task", "family", "model", "n_params", "metric", "score", "n", "chance"]]


def _serial(table, n_boot, seed):
    """The loop a user writes today: one fit_trend per task (same per-task seeds)."""
    out = {}
    for key, rows in split_groups(table, "task").items():
        try:
            out[key] = fit_trend(rows, n_boot=n_boot, rng=group_seed(seed, key))
        except ValueError as err:
            out[key] = err
    return out


SERIAL = """
import json, time, warnings
warnings.simplefilter("ignore")
import pandas as pd
from scalingfit import fit_trend
from scalingfit.many import group_seed, split_groups
table = pd.read_pickle({path!r})
groups = split_groups(table, "task")
key0 = next(iter(groups))
fit_trend(groups[key0], n_boot={n_boot}, rng=0)                   # warm-up (imports)
t0 = time.perf_counter()
shapes = {{}}
for key, rows in groups.items():
    try:
        shapes[str(key)] = fit_trend(rows, n_boot={n_boot}, rng=group_seed({seed}, key)).shape
    except ValueError as err:
        shapes[str(key)] = "error"
print(json.dumps({{"wall": time.perf_counter() - t0, "shapes": shapes}}))
"""


def _time(fn, repeat=1):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def screen_figures(label, table, n_boot, ref_tree, seed=0):
    n = table["task"].nunique()
    fams = table["family"].nunique()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "table.pkl")
        table.to_pickle(path)
        load0 = uptime()
        old = run_in(ref_tree, SERIAL.format(path=path, n_boot=n_boot, seed=seed))
    t_loop = old["wall"]
    t1, m1 = _time(lambda: fit_many(table, n_boot=n_boot, rng=seed, n_jobs=1, progress=False))
    # the first n_jobs=2 call starts the worker processes (each imports the package, ~1.5 s
    # here); the second reuses them (joblib keeps the pool), as every later call of a session
    t2c, m2 = _time(lambda: fit_many(table, n_boot=n_boot, rng=seed, n_jobs=2, progress=False))
    t2, _ = _time(lambda: fit_many(table, n_boot=n_boot, rng=seed, n_jobs=2, progress=False))
    same = m1.summary().equals(m2.summary())
    agree = sum(old["shapes"].get(str(k)) == m1[k].shape for k in m1.keys())
    print(f"\n{label}: {n} tasks x {fams} families, n_boot={n_boot} (load average "
          f"{load0} -> {uptime()})")
    print(f"  serial loop of fit_trend (reference code)  {t_loop:7.2f} s")
    print(f"  fit_many(n_jobs=1)                         {t1:7.2f} s   loop / fit_many(1) = "
          f"{t_loop / t1:5.2f}x (target >= 3x)")
    print(f"  fit_many(n_jobs=2), starting its workers   {t2c:7.2f} s   fit_many(1) / "
          f"fit_many(2) = {t1 / t2c:5.2f}x")
    print(f"  fit_many(n_jobs=2), workers running        {t2:7.2f} s   fit_many(1) / "
          f"fit_many(2) = {t1 / t2:5.2f}x (target >= 1.7x); target <= 10 s for 65 tasks")
    print(f"  n_jobs=1 and n_jobs=2 summaries identical: {same}; verdicts equal to the "
          f"reference loop's: {agree} of {len(m1)}; {m1.headline()}")


def single_fit(n_boot):
    data = simulate_results("inverse", n_families=3, n_models=8, n_examples=1000,
                            link="identity", effect=0.1, rng=1)
    fit_trend(data, n_boot=n_boot, rng=0)                       # warm-up (numba, imports)
    t, _ = _time(lambda: fit_trend(data, n_boot=n_boot, rng=0), repeat=3)
    print(f"\nfit_trend, 3 families x 8 models x 1,000 examples, n_boot={n_boot}: {t:.3f} s "
          "(best of 3; target <= 0.2 s)")
    return data


def profile(label, fn, top=15):
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    stats = pstats.Stats(prof)

    def calls(*names, where=""):
        return sum(v[1] for k, v in stats.stats.items()
                   if k[2] in names and k[0].endswith(where))

    total = stats.total_tt
    searches = calls("minimize_scalar", "bounded_brent")
    evals = calls("_neg_loglik", "__call__", where="metareg.py")
    print(f"\nprofile of {label}: {total:.3f} s under cProfile; {searches} scalar REML "
          f"searches, {evals} criterion evaluations, {calls('batched_verdicts')} "
          "batched_verdicts calls")
    for title, key, restrict in (("by own time", "tottime", (top,)),
                                 ("by cumulative time (scalingfit)", "cumulative",
                                  ("scalingfit", 20))):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats(key).print_stats(*restrict)
        lines = buf.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
        print(f"  {title}:")
        print("\n".join(line.replace(str(ROOT) + "/", "") for line in lines[start:]
                        if line.strip()))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--tasks", type=int, default=65)
    p.add_argument("--gadre", type=Path, default=GADRE)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--skip-screens", action="store_true")
    p.add_argument("--reference", default=None,
                   help="git ref of the old code (default: merge-base of HEAD and main)")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    data = single_fit(args.n_boot)
    if args.profile:
        agg = simulated_screen(n_tasks=1)
        fit_trend(agg, n_boot=args.n_boot, rng=0)
        profile("fit_trend, per-example 3 x 8 x 1,000",
                lambda: fit_trend(data, n_boot=args.n_boot, rng=0))
        profile("fit_trend, aggregated 4 x 8 (one task of the screen)",
                lambda: fit_trend(agg, n_boot=args.n_boot, rng=0))
    if args.skip_screens:
        return 0
    ref = args.reference or default_reference()
    tree = reference_tree(ref)
    print(f"\nreference code: {ref[:12]} ({tree})")
    screen_figures("simulated aggregated screen", simulated_screen(n_tasks=args.tasks),
                   args.n_boot, tree)
    real = gadre_screen(args.gadre)
    if real is None:
        print(f"\nopen_lm testbed not found at {args.gadre} (pass --gadre PATH); skipped")
    else:
        screen_figures("open_lm testbed (Gadre et al. 2024), compute-optimal slice", real,
                       args.n_boot, tree)
    return 0


if __name__ == "__main__":
    sys.exit(main())
