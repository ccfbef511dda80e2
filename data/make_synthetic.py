"""Regenerate data/synthetic_families.csv: three families with a known inverse truth.

Run from the repository root: ``python data/make_synthetic.py``. Seeded, so the file is
reproduced byte for byte. Truth: inverse scaling of 1.2 logits from the smallest to the largest
model, model-level deviation SD 0.1 logits, 8 models per family, 400 shared examples.
"""

from pathlib import Path

from scalingfit.simulate import simulate_results

if __name__ == "__main__":
    df = simulate_results("inverse", n_families=3, n_models=8, n_examples=400, effect=1.2,
                          model_sd=0.1, rng=20221122)
    df.insert(2, "task", "synthetic-inverse")
    df.to_csv(Path(__file__).with_name("synthetic_families.csv"), index=False)
