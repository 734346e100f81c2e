"""Trials queued before the sampler draws from another study's best: its top trials' params, moved into
this study's search space.

    hpsearch run STUDY --warm-start OTHER [--warm-start-top 5] [--warm-start-storage URL]

`plan` reads and checks everything `hpsearch run` queues (this and `--enqueue FILE`) before anything
is written; hpsearch.orchestration.enqueue queues it once the study exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import optuna

from hpsearch.errors import NoDatabase, NotFound, missing_study, redact
from hpsearch.orchestration.enqueue import Batch, clip, load_configs
from hpsearch.results.pareto import pareto_front
from hpsearch.results.record import TrialAttr
from hpsearch.results.storage import checked_url, open_storage, storage_url
from hpsearch.spec import Spec, SpecError

DEFAULT_TOP = 5


def warm_configs(
    other_trials: Iterable[optuna.trial.FrozenTrial], direction: Any, spec: Spec, k: int
) -> list[tuple[int, dict[str, Any]]]:
    """(trial number, config) for the best k completed trials of another study, best first.

    `direction` is the other study's first (`maximize`, `minimize` or a StudyDirection); ties go to the
    lower trial number. Each config keeps the params both spaces share, clipped into this space
    (`clip`); a value with no place here is left out, for the sampler to draw. Configs left empty,
    or identical to a better one after clipping, are dropped.
    """
    maximize = str(getattr(direction, "name", direction)).lower() == "maximize"
    # values[0]: the quality objective, also in a study with a cost (whose caller passes its Pareto front)
    done = [t for t in other_trials if t.state == optuna.trial.TrialState.COMPLETE and t.values]
    ranked = sorted(done, key=lambda t: (-t.values[0] if maximize else t.values[0], t.number))
    out: list[tuple[int, dict[str, Any]]] = []
    for trial in ranked[:k]:
        config = {}
        for name, param in spec.search.items():
            if name in trial.params:
                try:
                    config[name] = clip(trial.params[name], param)
                except ValueError:
                    pass
        if config and all(config != seen for _, seen in out):
            out.append((trial.number, config))
    return out


def warm_start(spec: Spec, name: str, url: str, k: int = DEFAULT_TOP) -> Batch:
    """The best k completed trials of study `name` in the storage at `url`, as a Batch.

    NotFound (exit status 2) when there is no such study or it has no completed trial; SpecError
    when none of its best trials shares a searched param with this study.
    """
    storage = open_storage(url, create=False, read_only=True)
    names = optuna.study.get_all_study_names(storage)
    if name not in names:
        raise missing_study(name, url, names)
    other = optuna.load_study(study_name=name, storage=storage)
    trials = other.get_trials(deepcopy=False)
    completed = sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    if not completed:
        states = [t.state.name.lower() for t in trials]
        counts = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states))) or "none"
        raise NotFound(f"study {name!r} in {redact(url)} has no completed trial to warm-start from (trials: {counts})")
    if len(other.directions) > 1:  # a cost objective: no one ranking, so the Pareto front, best quality first
        trials = pareto_front(other, trials)
        completed = len(trials)
    top = min(k, completed)
    picked = warm_configs(trials, other.directions[0], spec, k)
    if not picked:
        theirs = sorted({p for t in trials for p in t.params})
        raise SpecError(
            spec.source,
            "--warm-start",
            f"the best trials of study {name!r} share no usable param with this study's search "
            f"({name}: {', '.join(theirs)}; here: {', '.join(spec.search)})",
        )
    notes = [f"top {top} of {completed} {'on the Pareto front' if len(other.directions) > 1 else 'completed'}"]
    if len(picked) < top:
        notes.append(f"{top - len(picked)} dropped as identical after clipping")
    return Batch(
        configs=[config for _, config in picked],
        attrs=[{TrialAttr.WARM_START: f"{name}#{number}"} for number, _ in picked],
        source=f"study {name}",
        label="warm start: ",
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------------------------
# The run's plan, and queuing it


def plan(
    spec: Spec,
    storage_override: str | None = None,
    enqueue: str | Path | None = None,
    warm_start_from: str | None = None,
    top: int | None = None,
    warm_storage: str | None = None,
) -> list[Batch]:
    """What `hpsearch run --enqueue/--warm-start` queues, read and checked; writes nothing.

    The file's configs come first, then the other study's. A grid study refuses both (it runs
    every point of its grid anyway).
    """
    if warm_start_from is None:
        for flag, given in (("--warm-start-top", top), ("--warm-start-storage", warm_storage)):
            if given is not None:
                raise SpecError(spec.source, flag, "is used only with --warm-start STUDY")
    if top is not None and top < 1:
        raise SpecError(spec.source, "--warm-start-top", f"must be >= 1, got {top}")
    for flag, given in (("--enqueue", enqueue), ("--warm-start", warm_start_from)):
        if given is not None and spec.sampler.type == "grid":
            raise SpecError(spec.source, flag, "a grid study already runs every point of its grid")
    batches = []
    if enqueue is not None:
        configs = load_configs(enqueue, spec)
        batches.append(Batch(configs, [{TrialAttr.ENQUEUED_FROM: str(enqueue)}] * len(configs), str(enqueue)))
    if warm_start_from is not None:
        if warm_storage is not None:
            url = checked_url(warm_storage, spec.source, "--warm-start-storage")
        else:
            url = storage_url(spec, storage_override)
        try:
            batches.append(warm_start(spec, warm_start_from, url, DEFAULT_TOP if top is None else top))
        except NotFound as exc:  # no such storage or study, nothing completed: name the flag it came from
            said = exc.args[0]
            if isinstance(exc, NoDatabase) and warm_storage is None:  # by default each study has its own NAME.db
                hint = f"is {warm_start_from} in another storage? give --warm-start-storage URL"
                said = f"no study database at {exc.path} ({hint})"
            raise NotFound(f"--warm-start {warm_start_from}: {said}") from None
    return batches
