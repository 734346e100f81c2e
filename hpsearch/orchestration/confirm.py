"""`hpsearch confirm`: train the search's best configs again with new seeds, as trials of the study
NAME.confirm in the same storage: queued once, resumable, shared by any number of workers, with a budget of
their own (the search's is untouched)."""

from __future__ import annotations

import dataclasses

import optuna
from pydantic import ValidationError

from hpsearch.errors import NotFound
from hpsearch.orchestration import controller, worker
from hpsearch.results import confirmation, export
from hpsearch.results.pareto import pareto_front
from hpsearch.results.record import StudyAttr, TrialAttr
from hpsearch.results.storage import load_study, open_storage, storage_url
from hpsearch.spec import Spec, SpecError
from hpsearch.spec.choosers import NoPruner, RandomSampler
from hpsearch.spec.messages import raise_all, spec_errors
from hpsearch.spec.sections import BudgetSpec, ConfirmSpec

COMPLETE, RUNNING, WAITING = (optuna.trial.TrialState[s] for s in ("COMPLETE", "RUNNING", "WAITING"))


def chosen(search: optuna.Study, top_k: int) -> list[optuna.trial.FrozenTrial]:
    """The configs to confirm: the `top_k` best COMPLETE trials, one per distinct params (with a cost
    objective, trials of the Pareto front, best quality first)."""
    maximize = search.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    if len(search.directions) > 1:
        candidates = pareto_front(search)
    else:
        candidates = list(search.get_trials(deepcopy=False, states=(COMPLETE,)))
    candidates.sort(key=lambda t: -t.values[0] if maximize else t.values[0])
    picked: dict[str, optuna.trial.FrozenTrial] = {}
    for t in candidates:
        picked.setdefault(repr(sorted(t.params.items())), t)  # the best trial of each config
    return list(picked.values())[:top_k]


def new_seeds(trial: optuna.trial.FrozenTrial, n: int) -> list[int]:
    """The seeds a config is confirmed with: the ones after the search trial's own."""
    base = int(trial.user_attrs.get(TrialAttr.SEED, 0))
    return [base + i for i in range(1, n + 1)]


def derived(spec: Spec, total: int) -> Spec:
    """The confirmation study's spec: the search's settings (its trials train what the search's trained),
    every trial to its end (no pruner), `total` trials, and no model kept (the search's best stays)."""
    return dataclasses.replace(
        spec,
        name=confirmation.study_name(spec.name),
        sampler=RandomSampler(type="random", seed=0),  # never drawn from: every trial is queued
        pruner=NoPruner(type="none"),
        budget=BudgetSpec(n_trials=total),
        model=spec.model.model_copy(update={"save_best": False}),
    )


def _planned(study: optuna.Study) -> dict[tuple[int, int], optuna.trial.TrialState]:
    """(search trial, seed) -> the state of its latest confirmation trial."""
    out = {}
    for t in study.get_trials(deepcopy=False):
        if TrialAttr.CONFIRM_OF in t.user_attrs:
            out[(t.user_attrs[TrialAttr.CONFIRM_OF], t.user_attrs[TrialAttr.SEED])] = t.state
    return out


def total(study: optuna.Study) -> int:
    """The confirmation trials this run of workers must finish: those counted and those still to run."""
    trials = study.get_trials(deepcopy=False)
    return worker.counted(study) + sum(t.state in (RUNNING, WAITING) for t in trials)


def joining_spec(spec: Spec, storage_override: str | None) -> Spec:
    """`hpsearch worker STUDY --confirm`: the confirmation study's spec, to run what `confirm` queued."""
    url = storage_url(spec, storage_override)
    storage = open_storage(url, create=False)
    name = confirmation.study_name(spec.name)
    if name not in optuna.study.get_all_study_names(storage):
        raise NotFound(f"study {spec.name!r} has no confirmation in {url}: run `hpsearch confirm` first")
    return derived(spec, total(optuna.load_study(study_name=name, storage=storage)))


def named(search: optuna.Study, numbers: list[int]) -> list[optuna.trial.FrozenTrial]:
    """The search trials `numbers` (`--trials`); SpecError unless each is a COMPLETE trial of the study."""
    complete = {t.number: t for t in search.get_trials(deepcopy=False, states=(COMPLETE,))}
    wrong = [n for n in numbers if n not in complete]
    if wrong:
        allowed = ", ".join(map(str, sorted(complete))) or "none"
        raise SpecError(
            "hpsearch confirm",
            "--trials",
            f"{', '.join(map(str, wrong))} not a completed trial of study {search.study_name!r} (completed: {allowed})",
        )
    return [complete[n] for n in dict.fromkeys(numbers)]


def flags_over(settings: ConfirmSpec, **flags: int | None) -> ConfirmSpec:
    """The study file's confirm settings with the flags given (`top_k=` for --top-k) over them, checked by
    ConfirmSpec's own fields, the one home of their bounds: SpecError naming each flag that breaks one."""
    given = {key: value for key, value in flags.items() if value is not None}
    try:
        return ConfirmSpec.model_validate({**settings.model_dump(), **given})
    except ValidationError as exc:
        errors = spec_errors(exc, ConfirmSpec, "hpsearch confirm")
        raise_all([SpecError(e.source, "--" + e.field.replace("_", "-"), e.message) for e in errors])
        raise


def plan(
    spec: Spec, storage_override: str | None, top_k: int | None, seeds: int | None, trials: list[int] | None, say
) -> Spec:
    """Queue what the confirmation lacks (each chosen config x its new seeds, once; a failed one again)
    and return the spec its workers run. Refused when the study file no longer matches the search."""
    settings = flags_over(spec.confirm, top_k=top_k, seeds=seeds)
    top_k, seeds = settings.top_k, settings.seeds
    url = storage_url(spec, storage_override, write=True)
    search = load_study(spec, url)
    controller.check_resume(spec, search)  # a confirmation trains exactly what the search trained
    configs = chosen(search, top_k) if trials is None else named(search, trials)
    if not configs:
        raise NotFound(f"study {spec.name!r} has no completed trial to confirm")
    for trial in configs:  # before the confirmation study is created: nothing written
        export.check_run_by_hpsearch(trial)
    study = optuna.create_study(
        study_name=confirmation.study_name(spec.name),
        storage=open_storage(url, create=True),
        directions=spec.objective.directions,
        load_if_exists=True,
    )
    study.set_user_attr(StudyAttr.CONFIRMS, spec.name)
    planned = _planned(study)
    queued = 0
    for trial in configs:
        for seed in new_seeds(trial, seeds):
            if planned.get((trial.number, seed)) in (COMPLETE, RUNNING, WAITING):
                continue
            attrs = {TrialAttr.CONFIRM_OF: trial.number, TrialAttr.SEED: seed}
            study.enqueue_trial(dict(trial.params), user_attrs=attrs, skip_if_exists=False)
            queued += 1
    numbers = ", ".join(str(t.number) for t in configs)
    each = f"{seeds} new seed{'s' if seeds != 1 else ''} each"
    say(f"confirming trials {numbers} of study {spec.name} with {each}: {queued} trials queued")
    return derived(spec, total(study))
