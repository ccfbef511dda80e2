"""Peak memory of ``fit_trend`` on a large eval set: chunked bootstrap weights vs whole.

Each configuration runs in a fresh process (peak RSS is per process: ``ru_maxrss``), on
simulated per-example results of 3 families x 12 models x N examples with the default
``n_boot=2000``. "whole" sets the chunk budget above the full weight matrix (the old way: one
replicates x examples matrix); "chunked" is the default (``bootstrap.CHUNK_BYTES``). Both must
give the same verdict and slopes (same seed); the ratio of peak RSS is printed.

Usage: ``python benchmarks/bench_memory.py [--examples 20000 40000]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
from scalingfit import bootstrap, fit_trend
from scalingfit.simulate import simulate_results
n_ex, whole = int(sys.argv[1]), sys.argv[2] == "whole"
df = simulate_results("inverse", n_families=3, n_models=12, n_examples=n_ex, effect=1.0, rng=7)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if whole:
    bootstrap.CHUNK_BYTES = 1 << 62
    bootstrap.paired_bootstrap_means.__kwdefaults__["chunk_bytes"] = 1 << 62
t0 = time.perf_counter()
r = fit_trend(df, rng=0)
sec = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_mb": peak / 1024, "data_mb": base / 1024, "seconds": sec,
                  "shape": r.shape, "slope": r.pooled["slope"],
                  "boot_sd": float(np.std(r.boot["pooled"]))}))
"""


def run(n_ex: int, how: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(n_ex), how], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, nargs="+", default=[20000, 40000])
    args = p.parse_args()
    print(f"{'examples':>9} {'how':>8} {'peak MB':>8} {'before fit':>10} {'s':>6}  shape")
    for n_ex in args.examples:
        res = {how: run(n_ex, how) for how in ("whole", "chunked")}
        for how, r in res.items():
            print(f"{n_ex:>9} {how:>8} {r['peak_mb']:>8.0f} {r['data_mb']:>10.0f} "
                  f"{r['seconds']:>6.2f}  {r['shape']}")
        same = res["whole"]["shape"] == res["chunked"]["shape"] and all(
            abs(res["whole"][k] - res["chunked"][k]) <= 1e-12 * abs(res["whole"][k])
            for k in ("slope", "boot_sd"))        # same draws; BLAS rounding of the products
        print(f"{'':>9} ratio whole/chunked peak {res['whole']['peak_mb'] / res['chunked']['peak_mb']:.2f}x; "
              f"same verdict, slope and bootstrap SD (to 1e-12): {same}")


if __name__ == "__main__":
    main()
