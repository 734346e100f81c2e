"""The noise-aware pruner: its bar is the one Optuna's pruner judged by, at tolerance 0 it decides as
Optuna does, and with a tolerance it spares a trial whose gap to the bar is within the noise."""

import random

import optuna
import pytest
from optuna.trial import TrialState

from hpsearch.search.noise import NoiseAwarePruner, bar_of

PRUNERS = {
    "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=100),
    "percentile": lambda: optuna.pruners.PercentilePruner(25.0, n_startup_trials=2),
    "successive-halving": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=100, reduction_factor=2),
    "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=100, max_resource=800, reduction_factor=2),
}


def _study(pruner, direction="maximize"):
    return optuna.create_study(study_name="s", direction=direction, pruner=pruner)


def _sweep(pruner, curves, observe=None):
    """Run the curves through a study; returns each trial's (pruned at, evidence) in order."""
    study = _study(pruner)
    out = []
    for number, curve in enumerate(curves):
        trial = study.ask()
        at_prune = None
        for at, value in curve:
            trial.report(value, at)
            if observe is not None:
                observe(pruner, number, at)
            if at < curve[-1][0] and trial.should_prune():
                at_prune = at
                break
        evidence = pruner.decisions.pop(number, None) if isinstance(pruner, NoiseAwarePruner) else None
        if at_prune is None:
            study.tell(trial, curve[-1][1])
        else:
            study.tell(trial, state=TrialState.PRUNED)
        out.append((at_prune, evidence))
    return out


def _curves(seed, n=30):
    rng = random.Random(seed)
    curves = []
    for _ in range(n):
        rate, noise = rng.uniform(0.0, 1.0), rng.uniform(0.0, 0.1)
        curves.append([(at, min(1.0, rate * at / 800 + rng.gauss(0, noise))) for at in range(100, 801, 100)])
    return curves


@pytest.mark.parametrize("kind", sorted(PRUNERS))
@pytest.mark.parametrize("seed", [0, 1])
def test_at_tolerance_zero_it_decides_as_optuna_and_each_prune_is_below_its_bar(kind, seed):
    curves = _curves(seed)
    plain = _sweep(PRUNERS[kind](), curves)
    wrapped = _sweep(NoiseAwarePruner(PRUNERS[kind](), 0.0), curves, lambda p, n, at: p.observe(n, at, 0.05, 400))
    assert [at for at, _ in plain] == [at for at, _ in wrapped]
    pruned = [(at, ev) for at, ev in wrapped if at is not None]
    assert pruned, "the sweep should prune something"
    for at, evidence in pruned:
        assert evidence["samples"] == at and evidence["pruned"] is True
        assert evidence["value"] < evidence["bar"]  # maximize: worse is lower
        assert evidence["uncertainty"] == 0.05 and evidence["eval_rows"] == 400


def test_the_median_bar_is_the_median_of_completed_trials_at_that_point():
    study = _study(optuna.pruners.MedianPruner(n_startup_trials=0))
    for values in ([0.2, 0.5], [0.4, 0.7], [0.3, 0.9]):
        t = study.ask()
        for at, v in zip((100, 200), values, strict=True):
            t.report(v, at)
        study.tell(t, values[-1])
    t = study.ask()
    t.report(0.1, 100)
    frozen = study._storage.get_trial(t._trial_id)
    assert study.pruner.prune(study, frozen)
    assert bar_of(study.pruner, study, frozen) == (0.1, 0.3)


def test_the_rung_bar_is_the_worst_value_promoted():
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=100, reduction_factor=2)
    study = _study(pruner)
    for value in (0.9, 0.8, 0.7):
        t = study.ask()
        t.report(value, 100)
        t.should_prune()
        study.tell(t, value)
    t = study.ask()
    t.report(0.5, 100)
    frozen = study._storage.get_trial(t._trial_id)
    assert pruner.prune(study, frozen)  # 4 at the rung, the best 2 go on: 0.9 and 0.8
    assert bar_of(pruner, study, frozen) == (0.5, 0.8)


def test_a_gap_within_the_noise_spares_the_trial_and_a_wide_one_prunes():
    def sweep(tolerance, se):
        pruner = NoiseAwarePruner(optuna.pruners.MedianPruner(n_startup_trials=1), tolerance)
        return _sweep(
            pruner, [[(100, 0.50), (200, 0.6)], [(100, 0.46), (200, 0.7)]], lambda p, n, at: p.observe(n, at, se)
        )

    assert sweep(0.0, 0.025)[1][0] == 100  # Optuna's median prunes 0.46 < 0.50
    spared = sweep(2.0, 0.025)[1]  # a gap of 0.04 is within 2 x 0.025
    assert spared[0] is None and spared[1]["pruned"] is False and spared[1]["value"] == 0.46
    assert sweep(1.0, 0.025)[1][0] == 100  # but not within 1 x 0.025
    assert sweep(1.0, None)[1][0] == 100  # no error estimate: Optuna's decision stands


def test_the_decision_records_why():
    pruner = NoiseAwarePruner(optuna.pruners.MedianPruner(n_startup_trials=1), 2.0)
    study = _study(pruner)
    t = study.ask()
    t.report(0.5, 100)
    study.tell(t, 0.5)
    t = study.ask()
    t.report(0.46, 100)
    pruner.observe(t.number, 100, 0.025, 400)
    assert not t.should_prune()
    assert pruner.decisions[t.number] == {
        "samples": 100,
        "value": 0.46,
        "bar": 0.5,
        "uncertainty": 0.025,
        "eval_rows": 400,
        "tolerance_se": 2.0,
        "pruned": False,
    }


def test_resources_given_as_fractions_resolve_from_the_first_budget_and_wait_for_it():
    from hpsearch.search.pruners import pruner_of
    from hpsearch.spec.choosers import PRUNER_TYPES

    pruner = pruner_of(PRUNER_TYPES["hyperband"].model_validate({"type": "hyperband"}), "study.yaml")
    assert pruner.fractions == {"min_resource": 0.0625, "max_resource": 1.0}
    study = _study(pruner)
    t = study.ask()
    t.report(0.1, 125)
    assert not t.should_prune()  # no budget seen yet: nothing to rung against
    pruner.observe_budget(2000)
    assert (pruner.base._min_resource, pruner.base._max_resource, pruner.fractions) == (125, 2000, {})
    pruner.observe_budget(4000)  # resolved once: a later trial's budget changes nothing
    assert pruner.base._min_resource == 125
    halving = pruner_of(PRUNER_TYPES["successive-halving"].model_validate({"type": "successive-halving"}), "s")
    assert halving.fractions == {} and halving.base._min_resource is None  # Optuna's auto, as given


def test_the_first_budget_is_stored_in_the_study_and_every_later_process_resolves_from_it(tmp_path):
    """A resume or another worker resolves from the budget the study's first trial to train stored, not
    from its own first trial's: hyperband's rungs stay where they were."""
    from hpsearch.search.pruners import pruner_of
    from hpsearch.spec.choosers import PRUNER_TYPES
    from hpsearch.training.callbacks import study_budget

    def hyperband():
        return pruner_of(PRUNER_TYPES["hyperband"].model_validate({"type": "hyperband"}), "study.yaml")

    storage = f"sqlite:///{tmp_path / 'b.db'}"
    first = optuna.create_study(study_name="b", storage=storage, direction="maximize", pruner=hyperband())
    first.pruner.observe_budget(study_budget(first, 96, 0))
    assert first.user_attrs["pruner_budget"] == {"samples": 96, "trial": 0}
    later = optuna.load_study(study_name="b", storage=storage, pruner=hyperband())  # a resume, another worker
    later.pruner.observe_budget(study_budget(later, 364, 4))
    assert (later.pruner.base._min_resource, later.pruner.base._max_resource) == (6, 96)
    assert later.user_attrs["pruner_budget"] == {"samples": 96, "trial": 0}  # written once


@pytest.mark.parametrize(
    ("section", "noted"),
    [
        ({"type": "hyperband", "min_resource": 100000}, "judges from 100000 samples on (pruner.min_resource)"),
        ({"type": "hyperband", "min_resource": 144, "max_resource": 192}, None),  # a rung at 144: judged there
        ({"type": "hyperband", "min_resource": 0.9}, "judges from 173 samples on"),  # 0.9 x 192, resolved first
        (
            {"type": "successive-halving", "min_resource": 40, "reduction_factor": 2, "min_early_stopping_rate": 2},
            "from 160 samples on",
        ),
        ({"type": "median", "n_warmup_steps": 145}, "judges from 145 samples on (pruner.n_warmup_steps)"),
        ({"type": "median", "n_warmup_steps": 144}, None),
        ({"type": "successive-halving"}, None),  # min_resource auto: unknown until a trial ends, nothing said
    ],
)
def test_a_pruner_says_once_when_its_first_judgement_lies_beyond_a_trials_last_evaluation(section, noted):
    """The schedule's last evaluation before the end (144 of 192 samples) against where the pruner first judges."""
    from types import SimpleNamespace

    from hpsearch.search.pruners import pruner_of
    from hpsearch.spec.choosers import PRUNER_TYPES
    from hpsearch.training.callbacks import OptunaReporter

    pruner = pruner_of(PRUNER_TYPES[section["type"]].model_validate(section), "study.yaml")
    study = _study(pruner)
    notes = []
    for _ in range(2):  # said for the first trial it applies to, not again
        schedule = SimpleNamespace(budget=192, last_intermediate=144)
        reporter = OptunaReporter(study.ask(), "eval_accuracy", schedule=schedule)
        reporter.on_note = notes.append
        reporter.on_train_begin(None, None, None)
    if noted is None:
        assert notes == []
    else:
        assert len(notes) == 1 and noted in notes[0] and "last before its end at 144 of its 192 samples" in notes[0]
    # A trial evaluated only at its end: no pruner can act on it (said once more here, the flag reset)
    pruner.noted_unprunable, before = False, len(notes)
    reporter = OptunaReporter(
        study.ask(), "eval_accuracy", schedule=SimpleNamespace(budget=192, last_intermediate=None)
    )
    reporter.on_note = notes.append
    reporter.on_train_begin(None, None, None)
    unknown = section == {"type": "successive-halving"}
    assert len(notes) - before == (0 if unknown else 1)
    assert unknown or notes[-1].endswith("the trial is evaluated only at its end (evaluation.every)")
