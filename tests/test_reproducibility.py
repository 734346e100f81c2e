"""Reproducibility (docs/guide/reproducibility.md): with one worker and fixed seeds, the same study run twice on
the CPU gives the same trials bit for bit: states, params, values, every intermediate value, every curve point,
also when the second run is `hpsearch run --workers 1` in a fresh process (its own string hash seed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from hpsearch import cli

HPSEARCH = str(Path(sys.executable).parent / "hpsearch")

# TPE after two random trials; the eval loss as objective (continuous, so trials rarely tie and the median
# pruner, after two trials and with no tolerance, prunes those above the median); dropout (the tiny BERT's 0.1,
# drawn from the seed); four evaluations a trial, the intermediate ones on an eval subsample (its own seed).
N_TRIALS = 5
STUDY = {
    "objective": {"metric": "loss"},
    "sampler": {"type": "tpe", "seed": 7, "n_startup_trials": 2},
    "pruner": {"type": "median", "n_startup_trials": 2, "tolerance_se": 0},
    "search": {
        "learning_rate": {"type": "float", "low": 1e-4, "high": 5e-2, "log": True},
        "per_device_train_batch_size": [8, 16],
        "weight_decay": {"type": "float", "low": 0.0, "high": 0.1},
    },
    "evaluation": {"every": 0.25, "subsample": 16},
    "budget": {"n_trials": N_TRIALS},
}


def trials(path: Path) -> list[dict]:
    """What a run decided and measured, trial by trial (not its times, memory or worker)."""
    name = path.stem
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{path.parent / name}.db")
    return [
        {
            "number": t.number,
            "state": t.state.name,
            "params": list(t.params.items()),  # in the order they were drawn
            "values": t.values,
            "intermediate_values": sorted(t.intermediate_values.items()),
            "curve": t.user_attrs.get("curve"),
            **{k: t.user_attrs.get(k) for k in ("seed", "steps_trained", "prune_reason", "prune_evidence", "spared")},
            "training_arguments": t.user_attrs.get("training_arguments"),
        }
        for t in study.get_trials(deepcopy=False)
    ]


def differences(a: list[dict], b: list[dict]) -> list[str]:
    """Each trial's first differing field, to name in the failure."""
    found = [f"{len(a)} trials against {len(b)}"] if len(a) != len(b) else []
    for x, y in zip(a, b, strict=False):
        found += [f"trial {x['number']} {k}: {x[k]!r} != {y[k]!r}" for k in x if x[k] != y[k]][:1]
    return found


@pytest.mark.slow
@pytest.mark.timeout(900)  # three sweeps of five trials
def test_the_same_study_run_twice_gives_the_same_trials(make_study):
    first = make_study(name="first", **STUDY)
    second = make_study(name="second", **STUDY)
    assert cli.main(["run", str(first), "--quiet"]) == 0
    assert cli.main(["run", str(second), "--quiet"]) == 0
    a, b = trials(first), trials(second)
    states = [t["state"] for t in a]
    # The test means something only if the sweep drew from TPE, pruned, and evaluated several times.
    assert len(a) == N_TRIALS and "PRUNED" in states and "COMPLETE" in states, states
    assert all(len(t["curve"]) >= 2 for t in a if t["state"] == "COMPLETE")
    assert len({t["params"][0][1] for t in a}) == N_TRIALS  # as many learning rates: the sampler did draw
    assert differences(a, b) == []

    # A fresh process through the CLI (its own string hash seed, nothing left over from this one).
    third = make_study(name="third", **STUDY)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [HPSEARCH, "run", str(third), "--workers", "1", "--quiet"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert differences(a, trials(third)) == []
