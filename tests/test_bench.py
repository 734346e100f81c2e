"""The benchmark scripts that BENCHMARKS.md's tables come from and that read recorded data only (no
training): bench/compare_grids.py and bench/search_efficiency.py, on small grids written here and on the
committed Banking77 grid (bench/data/curves-classification.json)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import compare_grids  # noqa: E402
import search_efficiency  # noqa: E402
import vs_hyperparameter_search  # noqa: E402

RECORDED = BENCH / "data" / "curves-classification.json"


def grid(path: Path, finals: dict[float, float | None], key: str = "eval_accuracy", direction: str = "maximize"):
    """A curves JSON (bench/curves.py's shape) with one trial per learning rate and its final value."""
    trials = [
        {
            "params": {"learning_rate": lr},
            "state": "COMPLETE" if value is not None else "FAIL",
            "value": value,
            "curve": [{"samples": 100, key: value}],
        }
        for lr, value in finals.items()
    ]
    path.write_text(json.dumps({"direction": direction, "objective_key": key, "trials": trials}))
    return path


def test_compare_grids_pairs_configs_and_summarises_differences(tmp_path, capsys):
    a = grid(tmp_path / "a.json", {1e-4: 0.30, 3e-4: 0.40, 1e-3: 0.20, 3e-3: 0.10})
    # 3e-3 failed in B and 1e-2 is not in A: neither is paired
    b = grid(tmp_path / "b.json", {1e-4: 0.28, 3e-4: 0.37, 1e-3: 0.22, 3e-3: None, 1e-2: 0.5})
    out = tmp_path / "cmp.json"
    compare_grids.main([str(a), str(b), "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["configs"] == 3
    assert [r["params"]["learning_rate"] for r in result["rows"]] == [3e-4, 1e-4, 1e-3]  # A's best first
    assert result["mean_difference"] == pytest.approx((-0.02 - 0.03 + 0.02) / 3)
    assert result["median_difference"] == pytest.approx(-0.02)
    assert (result["lower"], result["higher"]) == (2, 1)
    assert result["interval_95"][0] < result["mean_difference"] < result["interval_95"][1]
    assert result["best_a"] == 0.40 and result["best_b"] == 0.37
    assert "| 0.0003 | 0.4000 | 0.3700 | -0.0300 |" in capsys.readouterr().out


@pytest.mark.parametrize(
    "b_finals, b_key, needle",
    [
        ({1e-4: 0.3}, "eval_loss", "objective eval_loss (maximize)"),
        ({5e-5: 0.3}, "eval_accuracy", "no config with a final value in common"),
    ],
)
def test_compare_grids_refuses_grids_it_cannot_pair(tmp_path, capsys, b_finals, b_key, needle):
    a = grid(tmp_path / "a.json", {1e-4: 0.3})
    b = grid(tmp_path / "b.json", b_finals, key=b_key)
    out = tmp_path / "cmp.json"
    with pytest.raises(SystemExit) as exit_:
        compare_grids.main([str(a), str(b), "--out", str(out)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {b}:") and needle in err and len(err.splitlines()) == 1
    assert not out.exists()


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(RECORDED.read_text())


def test_grid_reference_is_the_recorded_grids_best_and_its_standard_error(recorded):
    ref = search_efficiency.grid_reference(recorded)
    finals = [t["value"] for t in recorded["trials"] if t["state"] == "COMPLETE"]
    assert ref["best"] == max(finals)
    rows = recorded["trials"][0]["curve"][-1]["eval_rows"]
    assert ref["se"] == pytest.approx(math.sqrt(ref["best"] * (1 - ref["best"]) / rows), rel=1e-6)
    assert ref["target"] == pytest.approx(ref["best"] - ref["se"])
    assert ref["samples"] == sum(t["curve"][-1]["samples"] for t in recorded["trials"])
    assert 0 < ref["reached"] <= ref["samples"]


def test_a_search_without_a_pruner_trains_every_trial_to_its_end(recorded):
    full = {t["curve"][-1]["samples"] for t in recorded["trials"]}
    assert len(full) == 1  # every recorded config trains the same samples
    run = search_efficiency.search_once(recorded, search_efficiency.SAMPLERS["tpe"], {"type": "none"}, 0, 12)
    assert run["samples"] == 12 * full.pop()
    assert [s for s, _ in run["trace"]] == sorted(s for s, _ in run["trace"])  # spent only grows
    finals = {t["value"] for t in recorded["trials"]}
    assert run["best"] in finals


def test_the_default_pruner_spends_less_than_no_pruner_with_the_same_sampler_seed(recorded):
    tpe = search_efficiency.SAMPLERS["tpe"]
    plain = search_efficiency.search_once(recorded, tpe, {"type": "none"}, 1, 20)
    pruned = search_efficiency.search_once(recorded, tpe, {"type": "hyperband"}, 1, 20)
    assert pruned["samples"] < plain["samples"]
    assert pruned["best"] is not None and len(pruned["trace"]) == 20


def test_replaying_the_grid_without_a_pruner_saves_nothing(recorded):
    rows = search_efficiency.replay_trials(recorded, {"type": "none"})
    assert len(rows) == len(recorded["trials"])
    assert {r["outcome"] for r in rows} == {"complete"}
    assert all(r["samples_replayed"] == r["samples_ran"] for r in rows)
    pruned = search_efficiency.replay_trials(recorded, {"type": "hyperband"})
    assert any(r["outcome"] == "pruned" and r["samples_replayed"] < r["samples_ran"] for r in pruned)


def test_search_efficiency_writes_its_tables_and_refuses_an_unknown_preset(recorded, tmp_path, capsys):
    out = tmp_path / "se.json"
    default = search_efficiency._default_label()
    search_efficiency.main(["--seeds", "0", "--trials", "8", "--pruners", "none", default, "--out", str(out)])
    result = json.loads(out.read_text())
    assert [s["pruner"] for s in result["searches"]] == ["none", default]
    assert [r["preset"] for r in result["replays"]] == ["none", default]
    assert result["grid"]["best"] == search_efficiency.grid_reference(recorded)["best"]
    assert "| tpe | none |" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        search_efficiency.main(["--pruners", "hyperband, 9 SE", "--out", str(tmp_path / "no.json")])
    assert exit_.value.code == 2
    assert "--pruners" in capsys.readouterr().err
    assert not (tmp_path / "no.json").exists()


def side(total: float, best: float, trials: list[tuple[str, float | None, float]]) -> dict:
    """One side of a vs_hyperparameter_search run: (state, value, duration_s) per trial, in trial order."""
    rows = [{"state": state, "value": value, "duration_s": d} for state, value, d in trials]
    return {"total_s": total, "best_value": best, "trials": rows}


def test_time_to_a_common_best_sums_trial_time_until_the_lower_final_best(tmp_path, capsys):
    # hpsearch: a pruned trial reported 0.5 but does not count; its best, 0.3, comes at trial 3 (60 s).
    # HF: its best, 0.25, is the common best, reached at trial 2 (90 s); hpsearch reached 0.25 at 60 s.
    hp = side(
        70.0, 0.3, [("COMPLETE", 0.1, 40.0), ("PRUNED", 0.5, 10.0), ("COMPLETE", 0.3, 10.0), ("COMPLETE", 0.2, 9)]
    )
    hf = side(140.0, 0.25, [("COMPLETE", 0.2, 45.0), ("COMPLETE", 0.25, 45.0), ("COMPLETE", 0.1, 45.0)])
    run = {"hpsearch": hp, "hf": hf}
    assert vs_hyperparameter_search.to_common_best(run) == {
        "target": 0.25,
        "hpsearch_s": 60.0,
        "hf_s": 90.0,
        "ratio": 60.0 / 90.0,
    }
    stored = tmp_path / "vs_hf-seed0.json"
    stored.write_text(json.dumps({"runs": [run]}))
    vs_hyperparameter_search.main(["--summarize", str(stored)])
    out = capsys.readouterr().out
    assert "| vs_hf-seed0.json | 0.2500 | 60.0 | 90.0 | 0.667 | 0.500 |" in out
    assert "median ratio to the common best: 0.667" in out
