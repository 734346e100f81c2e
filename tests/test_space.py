"""space.py, samplers.py, pruners.py: distributions, grid expansion and the factories."""

import re
import warnings

import optuna
import pytest

from hpsearch.search import pruners, samplers, space
from hpsearch.search.noise import NoiseAwarePruner
from hpsearch.spec import SpecError, load_spec
from hpsearch.spec.choosers import DEFAULT_TOLERANCE_SE


def test_distributions_follow_the_search_section(make_study):
    spec = load_spec(
        make_study(
            search__warmup_steps={"type": "float", "low": 0.0, "high": 0.2, "step": 0.05},
            search__gradient_accumulation_steps={"type": "int", "low": 1, "high": 4, "log": True},
        )
    )
    dists = {name: space.distribution(p) for name, p in spec.search.items()}
    assert dists["learning_rate"] == optuna.distributions.FloatDistribution(1e-3, 1e-2, log=True)
    assert dists["per_device_train_batch_size"] == optuna.distributions.CategoricalDistribution((8, 16))
    assert dists["warmup_steps"] == optuna.distributions.FloatDistribution(0.0, 0.2, step=0.05)
    assert dists["gradient_accumulation_steps"] == optuna.distributions.IntDistribution(1, 4, log=True)


def test_suggest_stays_inside_the_space(make_study):
    spec = load_spec(make_study())
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        params = space.suggest(study.ask(), spec.search)
        assert 1e-3 <= params["learning_rate"] <= 1e-2
        assert params["per_device_train_batch_size"] in (8, 16)


def test_grid_expands_steps_and_choices(make_study):
    spec = load_spec(
        make_study(
            search={
                "warmup_steps": {"type": "float", "low": 0.0, "high": 0.2, "step": 0.1},
                "num_train_epochs": {"type": "int", "low": 1, "high": 5, "step": 2},
                "optim": ["adamw_torch", "sgd"],
            },
            evaluation={"every": 0.5},
            train={},
        )
    )
    grid = space.grid(spec.search)
    assert grid == {"warmup_steps": [0.0, 0.1, 0.2], "num_train_epochs": [1, 3, 5], "optim": ["adamw_torch", "sgd"]}
    assert space.grid_size(spec.search) == 18


def test_grid_rejects_a_continuous_parameter(make_study):
    with pytest.raises(SpecError, match="search.learning_rate: the grid sampler needs a discrete space"):
        load_spec(make_study(sampler__type="grid"))


def test_a_step_that_does_not_divide_the_range_is_refused(make_study):
    with pytest.raises(
        SpecError, match=r"search.num_train_epochs.high: high - low must be a multiple of step 2; e.g. high: 7"
    ):
        load_spec(make_study(search={"num_train_epochs": {"type": "int", "low": 1, "high": 8, "step": 2}}))
    spec = load_spec(make_study(search={"warmup_steps": {"type": "float", "low": 0.0, "high": 0.3, "step": 0.1}}))
    assert space.grid(spec.search)["warmup_steps"] == [0.0, 0.1, 0.2, 0.3]


def test_resumed_sampler_draws_new_configs(make_study):
    spec = load_spec(make_study())
    first = optuna.create_study(sampler=samplers.build_sampler(spec, 0))
    resumed = optuna.create_study(sampler=samplers.build_sampler(spec, 2))
    draws = [space.suggest(first.ask(), spec.search)["learning_rate"] for _ in range(4)]
    again = [space.suggest(resumed.ask(), spec.search)["learning_rate"] for _ in range(2)]
    assert not set(again) & set(draws)


@pytest.mark.parametrize(
    ("sampler", "cls"),
    [
        ({"type": "random"}, optuna.samplers.RandomSampler),
        ({"type": "tpe", "n_startup_trials": 3}, optuna.samplers.TPESampler),
        ({"type": "gp", "n_startup_trials": 3}, optuna.samplers.GPSampler),
        ({"type": "qmc", "qmc_type": "halton", "scramble": True}, optuna.samplers.QMCSampler),
    ],
)
def test_sampler_factory(make_study, sampler, cls):
    assert isinstance(samplers.build_sampler(load_spec(make_study(sampler=sampler))), cls)


@pytest.mark.parametrize("sampler", [{"type": "gp", "n_startup_trials": 2, "seed": 1}, {"type": "qmc", "seed": 1}])
def test_gp_and_qmc_draw_reproducible_configs_over_the_space(make_study, sampler):
    spec = load_spec(make_study(sampler=sampler))

    def run() -> list:
        study = optuna.create_study(sampler=samplers.build_sampler(spec), direction="maximize")
        study.optimize(lambda t: -abs(space.suggest(t, spec.search)["learning_rate"] - 3e-3), n_trials=4)
        return [t.params for t in study.trials]

    first = run()
    assert first == run() and len({p["learning_rate"] for p in first}) == 4
    assert all(1e-3 <= p["learning_rate"] <= 1e-2 and p["per_device_train_batch_size"] in (8, 16) for p in first)


def test_seeded_tpe_repeats_its_suggestions(make_study):
    spec = load_spec(make_study(sampler={"type": "tpe", "seed": 3, "n_startup_trials": 2}))

    def run() -> list:
        study = optuna.create_study(sampler=samplers.build_sampler(spec), direction="maximize")
        study.optimize(lambda t: -abs(space.suggest(t, spec.search)["learning_rate"] - 3e-3), n_trials=6)
        return [t.params for t in study.trials]

    assert run() == run()


PRUNERS = [
    ({"type": "none"}, optuna.pruners.NopPruner),
    ({"type": "median", "n_startup_trials": 2, "n_warmup_steps": 5}, optuna.pruners.MedianPruner),
    ({"type": "percentile", "percentile": 25.0, "n_warmup_steps": 5}, optuna.pruners.PercentilePruner),
    ({"type": "successive-halving", "min_resource": 2, "reduction_factor": 3}, optuna.pruners.SuccessiveHalvingPruner),
    ({"type": "hyperband", "min_resource": 2, "max_resource": "auto"}, optuna.pruners.HyperbandPruner),
]


@pytest.mark.parametrize(("pruner", "cls"), PRUNERS, ids=[p[0]["type"] for p in PRUNERS])
def test_pruner_factory(make_study, pruner, cls):
    built = pruners.build_pruner(load_spec(make_study(pruner=pruner)))
    if pruner["type"] == "none":
        assert isinstance(built, cls)
    else:  # every pruner that judges trials is wrapped, at the default tolerance
        assert isinstance(built, NoiseAwarePruner) and isinstance(built.base, cls)
        assert built.tolerance_se == DEFAULT_TOLERANCE_SE


@pytest.mark.parametrize(
    ("pruner", "message"),
    [
        (
            {"type": "median", "percentile": 20.0},
            "pruner.percentile: unknown key for pruner median; allowed: type, tolerance_se, n_startup_trials",
        ),
        ({"type": "percentile"}, "pruner.percentile: is required"),
        ({"type": "percentile", "percentile": 140.0}, "pruner.percentile: must be in [0, 100], got 140.0"),
        (
            {"type": "hyperband", "max_resource": "lots"},
            "pruner.max_resource: 'lots' is not allowed; samples (an integer >= 1) or a fraction of a trial's samples"
            " in (0, 1], or 'auto'",
        ),
        (
            {"type": "hyperband", "min_resource": "auto"},
            "pruner.min_resource: 'auto' is not allowed; samples (an integer >= 1) or a fraction of a trial's samples"
            " in (0, 1]",
        ),
        ({"type": "median", "n_warmup_steps": -1}, "pruner.n_warmup_steps: must be >= 0"),
    ],
)
def test_bad_pruner_options(make_study, pruner, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        pruners.build_pruner(load_spec(make_study(pruner=pruner)))


@pytest.mark.parametrize("sampler", [{"type": "gp", "n_startup_trials": 2}, {"type": "qmc", "qmc_type": "sobol"}])
def test_gp_and_qmc_are_built_without_optunas_experimental_warning(make_study, sampler):
    """Every command builds the study's sampler: hpsearch documents these two, Optuna's warning is noise."""
    spec = load_spec(make_study(sampler=sampler))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        samplers.build_sampler(spec)
