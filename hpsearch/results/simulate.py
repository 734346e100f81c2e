"""Replay a study's stored learning curves under another pruner: Optuna's own pruner classes on an
in-memory study, one trial at a time in the order the trials were created. Which trials the pruner
would have pruned and where, the training it would have saved, and whether the study's best and its
top k would have survived. A study run without a pruner is the ground truth."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch.errors import NotFound, SpecError
from hpsearch.results import progress_axis
from hpsearch.results.record import CurveKey, TrialAttr
from hpsearch.search.noise import NoiseAwarePruner
from hpsearch.search.pruners import RESOURCES, pruner_of
from hpsearch.spec import Spec

_REPLAYED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class Replayed:
    """One trial under the replayed pruner."""

    number: int
    params: dict[str, Any]
    ran: str
    """complete or pruned, as the trial ran."""
    outcome: str
    """complete; pruned (the replayed pruner stopped it); or ended (it was pruned in the run before the
    replayed pruner decided: its curve ends there, so the replay stops it there too)."""
    at: int | None
    """The point of the progress axis where it was pruned (or its curve ended)."""
    value: float | None
    """Its final objective, when it completed in the run."""
    samples_ran: int
    samples_replayed: int
    evidence: dict[str, Any] | None = None
    """The replayed pruner's evidence where it pruned (a pruner with a tolerance)."""


@dataclass(frozen=True)
class Simulation:
    study: str
    pruner: dict[str, Any]
    axis: str
    """samples (studies since schema version 3) or steps (older studies: their points, and so the pruner's
    options, are optimizer steps; the training is still counted in samples, from each trial's batch)."""
    trials: list[Replayed]
    top_k: int
    best: int | None
    """The run's best completed trial."""
    best_survives: bool
    top_k_survivors: int
    """How many of the run's top k completed trials also complete in the replay."""
    best_replayed: int | None
    """The best trial among those that complete in the replay."""
    budget: int | None = None
    """The budget (on the axis) fractional min_resource and max_resource were resolved against."""
    completed: int = 0
    """The run's completed trials with a finite value (the most a top k can hold)."""
    left_out: list[tuple[int, str]] = field(default_factory=list)
    """The trials not replayed, each with why: its state (running, fail, ...), or no evaluation."""

    @property
    def samples_ran(self) -> int:
        return sum(t.samples_ran for t in self.trials)

    @property
    def samples_replayed(self) -> int:
        return sum(t.samples_replayed for t in self.trials)

    @property
    def saved(self) -> float:
        """The share of the run's training the replayed pruner would not have spent."""
        return 1 - self.samples_replayed / self.samples_ran if self.samples_ran else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(samples_ran=self.samples_ran, samples_replayed=self.samples_replayed, saved=round(self.saved, 4))
        return out


def of_study(spec: Spec, study: optuna.Study, top_k: int = 3) -> Simulation:
    """Replay `study` under the pruner of `spec` (the study file with its --set overrides)."""
    if spec.objective.cost is not None or len(study.directions) > 1:
        raise SpecError(
            spec.source, "objective.cost", "simulate replays single-objective studies (Optuna prunes those only)"
        )
    if top_k < 1:
        raise SpecError(spec.source, "--top-k", f"{top_k} is not allowed; a whole number >= 1")
    trials = study.get_trials(deepcopy=False)
    if not any(_replayable(t) for t in trials):
        raise NotFound(f"study {study.study_name!r} has no completed or pruned trial to replay")
    settings = spec.to_dict()["pruner"]
    axis = progress_axis.of_study(study.user_attrs, trials)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the in-memory study's creation is no news
    return replay(
        trials,
        study.study_name,
        spec.objective.direction,
        pruner_of(spec.pruner, spec.source),
        spec.objective.key,
        settings,
        top_k,
        axis,
        progress_axis.first_budget(study.user_attrs, trials, axis),
    )


def replay(
    trials: list[FrozenTrial],
    study_name: str,
    direction: str,
    pruner: optuna.pruners.BasePruner,
    objective_key: str,
    pruner_settings: dict[str, Any],
    top_k: int = 3,
    axis: str = progress_axis.SAMPLES,
    budget: int | None = None,
) -> Simulation:
    """Replay `trials` (a study's, any states) under `pruner`, its fractional resources resolved against
    `budget` (`progress_axis.first_budget`; unset: that rule on `trials` alone). The trial numbers of the
    replay are the run's (hyperband assigns brackets by number): a trial that cannot be replayed (failed,
    running, never reported) takes its number as a failed trial, and is named in `left_out`."""
    study = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(), study_name=study_name, direction=direction, pruner=pruner
    )
    maximize = direction == "maximize"
    replayed: list[Replayed] = []
    left_out: list[tuple[int, str]] = []
    if budget is None:  # trials without their study (bench's recorded grids): the run's rule on them
        budget = progress_axis.first_budget({}, trials, axis)
    if isinstance(pruner, NoiseAwarePruner) and budget is not None:
        pruner.observe_budget(budget)
    for t in sorted(trials, key=lambda t: t.number):
        while len(study.trials) < t.number:  # numbers the stored study gave trials that no longer exist
            study.tell(study.ask(), state=TrialState.FAIL)
        if not _replayable(t):
            study.tell(study.ask(), state=TrialState.FAIL)
            left_out.append((t.number, "no evaluation" if t.state in _REPLAYED else t.state.name.lower()))
            continue
        replayed.append(_replay_one(study, t, pruner, objective_key, axis))
    done = [r for r in replayed if r.ran == "complete" and r.value is not None and math.isfinite(r.value)]
    ranked = sorted(done, key=lambda r: -r.value if maximize else r.value)
    survivors = [r for r in ranked if r.outcome == "complete"]
    top = ranked[:top_k]
    return Simulation(
        study=study_name,
        pruner=pruner_settings,
        axis=axis,
        trials=replayed,
        top_k=top_k,
        best=ranked[0].number if ranked else None,
        best_survives=bool(ranked) and ranked[0].outcome == "complete",
        top_k_survivors=sum(r.outcome == "complete" for r in top),
        best_replayed=survivors[0].number if survivors else None,
        budget=budget,
        completed=len(ranked),
        left_out=left_out,
    )


def _replayable(t: FrozenTrial) -> bool:
    return t.state in _REPLAYED and bool(t.intermediate_values)


def _replay_one(study: optuna.Study, t: FrozenTrial, pruner, objective_key: str, axis: str) -> Replayed:
    trial = study.ask()
    points = sorted(t.intermediate_values)
    last = points[-1]
    at_key = progress_axis.curve_key(axis)
    uncertainty = {
        p.get(at_key): (p.get(f"{objective_key}_se"), p.get(CurveKey.EVAL_ROWS)) for p in progress_axis.curve(t)
    }
    ran = "complete" if t.state == TrialState.COMPLETE else "pruned"
    ran_samples = progress_axis.to_samples(t, last, axis)
    # A trial trained to its end is not pruned at its final evaluation; one stopped early could have been.
    to_the_end = ran == "complete" and TrialAttr.EARLY_STOPPED_AT_STEP not in t.user_attrs
    for at in points:
        trial.report(t.intermediate_values[at], at)
        if to_the_end and at == last:
            break
        if isinstance(pruner, NoiseAwarePruner):
            prune, evidence = pruner.judge(trial, at, *uncertainty.get(at, (None, None)))
        else:
            prune, evidence = trial.should_prune(), None
        if prune:
            study.tell(trial, state=TrialState.PRUNED)
            at_samples = progress_axis.to_samples(t, at, axis)
            return Replayed(t.number, t.params, ran, "pruned", at, _value(t), ran_samples, at_samples, evidence)
    if ran == "pruned":  # its curve ends where the run's pruner stopped it
        study.tell(trial, state=TrialState.PRUNED)
        return Replayed(t.number, t.params, ran, "ended", last, None, ran_samples, ran_samples)
    study.tell(trial, t.value)
    return Replayed(t.number, t.params, ran, "complete", None, t.value, ran_samples, ran_samples)


def _value(t: FrozenTrial) -> float | None:
    return t.value if t.state == TrialState.COMPLETE else None


def table(sim: Simulation, metric: str) -> str:
    """The replay as a terminal table and a summary."""
    settings = ", ".join(f"{k}: {v}" for k, v in sim.pruner.items())
    lines = [f"replay of study {sim.study!r} under pruner {{{settings}}} ({len(sim.trials)} trials, by {sim.axis})"]
    if any(isinstance(sim.pruner.get(k), float) for k in RESOURCES) and sim.budget is not None:
        lines.append(f"(min_resource and max_resource given as fractions: of a budget of {sim.budget:,} {sim.axis})")
    if sim.axis == "steps":
        lines.append("(stored before schema version 3: its points, and so the pruner's options, are optimizer steps)")
    lines += [f"trial {number} left out: {why}" for number, why in sim.left_out]
    rows = []
    for r in sim.trials:
        where = "complete" if r.outcome == "complete" else f"{r.outcome} at {r.at:,}"
        if r.evidence and r.evidence.get("bar") is not None:
            se = r.evidence.get("uncertainty")
            where += f" ({r.evidence['value']:.3g} vs {r.evidence['bar']:.3g}" + (f" ±{se:.2g})" if se else ")")
        value = "" if r.value is None else f"{r.value:.4g}"
        rows.append((str(r.number), r.ran, where, value, " ".join(f"{k}={_short(v)}" for k, v in r.params.items())))
    header = ("trial", "ran", "replayed", metric, "params")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        cells = [row[0].rjust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]), row[3].rjust(widths[3])]
        lines.append("  ".join([*cells, row[4]]))
    lines.append(
        f"training: {sim.samples_ran:,} samples as run, {sim.samples_replayed:,} replayed (saves {sim.saved:.0%})"
    )
    if sim.best is None:
        lines.append("no trial completed in the run: nothing to rank")
    else:
        kept = "survives" if sim.best_survives else "is pruned"
        top = f"{sim.top_k_survivors} of its top {sim.top_k} survive"
        if sim.top_k > sim.completed:
            some = f"all {sim.completed}" if sim.top_k_survivors == sim.completed else str(sim.top_k_survivors)
            top = f"{some} of its {sim.completed} completed trials survive (top-k {sim.top_k} asked)"
        lines.append(f"the run's best, trial {sim.best}, {kept}; {top}; best in the replay: trial {sim.best_replayed}")
    return "\n".join(lines)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
