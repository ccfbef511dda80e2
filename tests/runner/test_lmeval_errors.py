"""Malformed lm-evaluation-harness logs: each is a DataValidationError naming file and line.

Each case copies the shipped log fixture (``data/lmeval``) and breaks one thing the way a
truncated upload, a hand edit or another harness task does; the CLI prints one
``scalingfit: error:`` line for each, never a traceback.
"""

import json
import shutil
from pathlib import Path

import pytest

from scalingfit.cli import main
from scalingfit.exceptions import DataValidationError
from scalingfit.lmeval import read_lm_eval_samples

DATA = Path(__file__).parent / "data" / "lmeval"


@pytest.fixture
def logs(tmp_path):
    out = tmp_path / "logs"
    shutil.copytree(DATA, out)
    samples = next(out.rglob("samples_*.jsonl"))
    results = next(out.rglob("results_*.json"))
    return out, samples, results


def _edit_first(samples: Path, change):
    lines = samples.read_text().splitlines()
    lines[0] = change(json.loads(lines[0]))
    samples.write_text("\n".join(lines) + "\n")


def _dump(d):
    return json.dumps(d)


CASES = {
    "truncated samples": (lambda s, r: s.write_text(s.read_text()[:-40]),
                          ["line 7", "not valid JSON"]),
    "array line": (lambda s, r: s.write_text("[1, 2]\n" + s.read_text()),
                   ["line 1", "a JSON list, not a sample"]),
    "empty samples": (lambda s, r: s.write_text(""), ["holds no samples"]),
    "truncated results": (lambda s, r: r.write_text(r.read_text()[:-5]),
                          ["results_", "not valid JSON"]),
    "results is a list": (lambda s, r: r.write_text("[1, 2, 3]"),
                          ["results_", "a JSON list, not the object"]),
    "no doc_id": (lambda s, r: _edit_first(s, lambda d: _dump(
        {k: v for k, v in d.items() if k != "doc_id"})), ["line 1", "no 'doc_id'"]),
    "no target": (lambda s, r: _edit_first(s, lambda d: _dump(
        {k: v for k, v in d.items() if k != "target"})), ["line 1", "no 'target'"]),
    "letter target": (lambda s, r: _edit_first(s, lambda d: _dump({**d, "target": "B"})),
                      ["line 1", "target 'B' is not the index of a choice"]),
    "target out of range": (lambda s, r: _edit_first(s, lambda d: _dump({**d, "target": 9})),
                            ["line 1", "target 9 is out of range for 2 choices"]),
    "text log-likelihoods": (lambda s, r: _edit_first(s, lambda d: _dump(
        {**d, "filtered_resps": [["high", False], ["low", False]]})),
        ["line 1", "'filtered_resps' holds"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_logs_are_named_errors(case, logs, capsys):
    out, samples, results = logs
    breaks, words = CASES[case]
    breaks(samples, results)
    with pytest.raises(DataValidationError) as err:
        read_lm_eval_samples(out)
    for word in words:
        assert word in str(err.value), (case, str(err.value))
    assert main(["fit", str(out), "--format", "lm-eval", "--n-boot", "100"]) == 2
    text = capsys.readouterr().err
    assert text.startswith("scalingfit: error: ") and "Traceback" not in text
