"""Benchmark fit_trend against the code before the speed work, and the vectorised bootstrap.

Data: 3 families x 8 models x 1,000 shared examples (simulated, seeded). ``n_boot=2000``.

* ``fit_trend`` end to end (validation, shape tests, bootstrap, noise evidence), this checkout
  against a reference checkout (default: the commit this branch left ``main`` at, i.e. the code
  before issue 13 item 5), both measured **in the same run**: the reference is extracted with
  ``git archive`` and timed in a subprocess, rounds alternate between the two, and each side
  reports its best wall and CPU time. Ratios are what to compare across runs (a loaded machine
  slows both sides alike); ``uptime`` is printed with them.
* The bootstrap alone, vectorised (one multinomial weight matrix, one matrix product for all
  replicate means, one batched GLS for all replicate slopes) against the naive loop: per
  replicate, resample example ids with pandas, ``groupby`` model means, and refit each family
  with statsmodels ``GLS``. Both produce the same replicate slope distribution (checked).

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_fit.py [--reference REF] [--rounds 5]``
(figures recorded in docs/bootstrap.md, section "Speed").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
from io import BytesIO
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scalingfit import StatisticalWarning, fit_trend  # noqa: E402
from scalingfit.bootstrap import replicate_scores  # noqa: E402
from scalingfit.curves import design_matrix  # noqa: E402
from scalingfit.data import load_results, model_scores  # noqa: E402
from scalingfit.fit import analyse  # noqa: E402
from scalingfit.metareg import batched_gls  # noqa: E402
from scalingfit.simulate import simulate_results  # noqa: E402

N_BOOT = 2000

#: the data of the per-fit target (issue 13): 3 families x 8 models x 1,000 examples
FIT_DATA = ("simulate_results('inverse', n_families=3, n_models=8, n_examples=1000, "
            "link='identity', effect=0.1, rng=1)")


# ------------------------------------------------------------------ the reference checkout
def default_reference() -> str:
    """The commit where this branch left ``main`` (the code before the speed work)."""
    out = subprocess.run(["git", "-C", str(ROOT), "merge-base", "HEAD", "main"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "HEAD"


def reference_tree(ref: str) -> Path:
    """``git archive`` of ``ref`` unpacked under the temp directory (reused across runs)."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", ref], capture_output=True,
                         text=True, check=True).stdout.strip()
    dest = Path(tempfile.gettempdir()) / f"scalingfit-ref-{sha[:12]}"
    if not (dest / "scalingfit" / "__init__.py").exists():
        blob = subprocess.run(["git", "-C", str(ROOT), "archive", sha], capture_output=True,
                              check=True).stdout
        with tarfile.open(fileobj=BytesIO(blob)) as tar:
            tar.extractall(dest, filter="data")
    return dest


def run_in(tree: Path, code: str) -> dict:
    """Run ``code`` (which prints one JSON line last) with ``tree`` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=str(tree), check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


TIMER = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np
from scalingfit import fit_trend
from scalingfit.simulate import simulate_results
data = {data}
fit_trend(data, n_boot={n_boot}, rng=0)                            # warm-up (imports)
wall, cpu = [], []
for _ in range({repeat}):
    t0, c0 = time.perf_counter(), time.process_time()
    r = fit_trend(data, n_boot={n_boot}, rng=0)
    wall.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
print(json.dumps({{"wall": min(wall), "cpu": min(cpu), "shape": r.shape}}))
"""


def compare_fit(ref_tree: Path, rounds: int, repeat: int = 3) -> dict:
    """Best wall / CPU seconds of fit_trend on FIT_DATA, here and in ``ref_tree``,
    alternating rounds (each round a fresh process per side)."""
    code = TIMER.format(data=FIT_DATA, n_boot=N_BOOT, repeat=repeat)
    best = {"new": {"wall": np.inf, "cpu": np.inf}, "old": {"wall": np.inf, "cpu": np.inf}}
    for _ in range(rounds):
        for side, tree in (("old", ref_tree), ("new", ROOT)):
            got = run_in(tree, code)
            best[side] = {k: min(best[side][k], got[k]) for k in ("wall", "cpu")}
            best[side]["shape"] = got["shape"]
    return best


def uptime() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split(" ")[:3])
    except OSError:  # pragma: no cover
        return "?"


# ------------------------------------------------------------------ the bootstrap alone
def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def vectorised(ms, analyses, rng):
    Y = replicate_scores(ms, N_BOOT, rng, 0.0)
    slopes = {}
    for fam in ms.families:
        idx = ms.family_index(fam)
        a = analyses[fam]
        beta, _, _ = batched_gls(Y[:, idx], design_matrix("linear", a.z, a.groups),
                                 a.linear.sigma)
        slopes[fam] = beta[:, -1]
    return slopes


def naive(table, ms, analyses, rng, n_boot):
    import statsmodels.api as sm

    ids = table["example_id"].unique()
    by_id = table.set_index("example_id")
    slopes = {fam: [] for fam in ms.families}
    for _ in range(n_boot):
        draw = rng.choice(ids, size=len(ids), replace=True)
        sample = by_id.loc[draw]
        means = sample.groupby(["family", "model"], sort=False)["score"].mean()
        for fam in ms.families:
            a = analyses[fam]
            models = ms.models.loc[ms.family_index(fam), "model"]
            y = means.loc[fam].reindex(models).to_numpy()
            X = design_matrix("linear", a.z, a.groups)
            slopes[fam].append(sm.GLS(y, X, sigma=a.linear.sigma).fit().params[-1])
    return {k: np.array(v) for k, v in slopes.items()}


def bootstrap_figures(n_naive: int):
    df = simulate_results("inverse", n_families=3, n_models=8, n_examples=1000, effect=1.0,
                          model_sd=0.1, rng=0)
    table = load_results(df)
    ms = model_scores(table)
    analyses, _, _ = analyse(ms, table)
    t_vec, fast = best_of(lambda: vectorised(ms, analyses, np.random.default_rng(1)), 5)
    t_naive, slow = best_of(lambda: naive(table, ms, analyses, np.random.default_rng(1),
                                          n_naive), 1)
    for fam in ms.families:  # same distribution: SDs agree within Monte Carlo error
        assert abs(fast[fam].std() / slow[fam].std() - 1) < 0.15
    t_naive *= N_BOOT / n_naive
    print(f"paired bootstrap, {N_BOOT} replicates x 3 family refits: vectorised {t_vec:.3f} s, "
          f"naive pandas+statsmodels loop {t_naive:.2f} s (from {n_naive} replicates) -> "
          f"{t_naive / t_vec:.0f}x faster")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reference", default=None,
                   help="git ref of the old code (default: merge-base of HEAD and main)")
    p.add_argument("--rounds", type=int, default=5, help="alternating old/new rounds")
    p.add_argument("--naive", type=int, default=200,
                   help="replicates of the naive bootstrap loop (scaled to n_boot)")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore", StatisticalWarning)
    ref = args.reference or default_reference()
    print(f"load average before: {uptime()}; reference {ref[:12]}")
    best = compare_fit(reference_tree(ref), args.rounds)
    old, new = best["old"], best["new"]
    print(f"fit_trend, 3 families x 8 models x 1,000 examples, n_boot={N_BOOT} "
          f"(best of {args.rounds} rounds x 3; target <= 0.2 s):")
    print(f"  reference {old['wall']:.3f} s wall, {old['cpu']:.3f} s CPU; verdict {old['shape']}")
    print(f"  this      {new['wall']:.3f} s wall, {new['cpu']:.3f} s CPU; verdict {new['shape']}")
    print(f"  speed-up  {old['wall'] / new['wall']:.2f}x wall, {old['cpu'] / new['cpu']:.2f}x CPU")
    bootstrap_figures(args.naive)
    print(f"load average after: {uptime()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
