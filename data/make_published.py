"""Convert the published results in ``shared/data`` into scalingfit's aggregated form.

Run from the repository root with the shared folder beside it:
``python data/make_published.py ../shared/data``. Writes ``data/opt_isp_round1.csv`` and
``data/isp_pilot.csv`` with columns ``task, family, model, n_params, metric, score, se, n,
source``. ``se`` is the published SEM where one exists (pilot runs), otherwise the binomial SE of
an accuracy ``sqrt(p (1 - p) / n)``; losses without a published SEM get no ``se`` and are left out
(scalingfit cannot weigh them honestly).
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

KEEP = ["task", "family", "model", "n_params", "metric", "score", "se", "n", "source"]


def convert(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path)
    is_se = raw["metric"].str.endswith(("_sem", "_se"))
    values = raw[~is_se].rename(columns={"value": "score", "n_examples": "n"})
    ses = raw[is_se].assign(metric=raw.loc[is_se, "metric"].str.replace(r"_sem?$", "",
                                                                       regex=True))
    ses = ses.rename(columns={"value": "se"})[["task", "family", "model", "metric", "se"]]
    out = values.merge(ses, on=["task", "family", "model", "metric"], how="left")
    acc = out["metric"].eq("accuracy") & out["se"].isna()
    p, n = out.loc[acc, "score"], out.loc[acc, "n"]
    out.loc[acc, "se"] = np.sqrt(p * (1 - p) / n)
    return out.dropna(subset=["se"])[KEEP]


if __name__ == "__main__":
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
    here = Path(__file__).parent
    convert(src / "opt_isp_round1_results.csv").to_csv(here / "opt_isp_round1.csv", index=False)
    convert(src / "isp_pilot_results.csv").to_csv(here / "isp_pilot.csv", index=False)
