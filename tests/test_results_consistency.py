"""The published calibration states the threshold cachekit ships, and its script agrees.

No benchmark runs here: the stored sweep (``benchmarks/hit_quality.json``) is re-read.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

from cachekit.embedders import MINILM_DEFAULT_THRESHOLD

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def hit_quality_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_hit_quality", BENCH / "hit_quality.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def section(name: str) -> str:
    text = (BENCH / "RESULTS.md").read_text(encoding="utf-8")
    return text.split(f"<!-- BEGIN {name} -->", 1)[1].split(f"<!-- END {name} -->", 1)[0]


def test_hit_quality_json_and_results_state_the_shipped_default() -> None:
    data = json.loads((BENCH / "hit_quality.json").read_text(encoding="utf-8"))
    assert data["default_threshold"] == MINILM_DEFAULT_THRESHOLD
    hit_quality = section("hit_quality")
    stated = re.findall(
        r"Default `similarity_threshold` for all-MiniLM-L6-v2 = ([0-9.]+)", hit_quality
    )
    assert [float(x) for x in stated] == [MINILM_DEFAULT_THRESHOLD]
    marked = re.findall(r"^\| \*\*([0-9.]+)\*\* \(default\) \|", hit_quality, re.M)
    assert [float(x) for x in marked] == [MINILM_DEFAULT_THRESHOLD]
    decision = section("threshold_decision")
    assert f"default threshold for all-minilm-l6-v2: {MINILM_DEFAULT_THRESHOLD}" in decision.lower()


def test_the_script_rule_picks_the_shipped_default_from_the_stored_sweep() -> None:
    script = hit_quality_script()
    data = json.loads((BENCH / "hit_quality.json").read_text(encoding="utf-8"))
    nan = float("nan")
    rows = [{k: (nan if v is None else v) for k, v in r.items()} for r in data["sweep"]["qqp"]]
    assert script.pick_default(rows) == MINILM_DEFAULT_THRESHOLD
