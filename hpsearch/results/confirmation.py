"""A search's confirmation (`hpsearch confirm`): its best configs trained again with new seeds, as trials of
the study NAME.confirm in the same storage; each config's mean, spread and 95 % interval over its seeds
(the search's own trial included), and the winner by mean."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass

import optuna

from hpsearch.results.format import format_params, format_value
from hpsearch.results.record import TrialAttr

SUFFIX = ".confirm"
COMPLETE = optuna.trial.TrialState.COMPLETE


def study_name(search_name: str) -> str:
    """The confirmation study of search study `search_name` (the same storage holds both)."""
    return f"{search_name}{SUFFIX}"


def interval(values: list[float]) -> tuple[float, float, float, float]:
    """(mean, standard deviation, low, high): the 95 % Student-t interval of the mean of `values`; the
    spread and the interval are NaN for a single value."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan, math.nan, math.nan
    from scipy.stats import t

    std = statistics.stdev(values)
    half = float(t.ppf(0.975, len(values) - 1)) * std / math.sqrt(len(values))
    return mean, std, mean - half, mean + half


@dataclass(frozen=True)
class Confirmed:
    """One confirmed config: the search trial it came from and its values over seeds."""

    trial: int
    """The search trial whose config this is (its value is the first of `values`)."""
    params: dict
    seeds: tuple[int, ...]
    values: tuple[float, ...]
    mean: float
    std: float
    low: float
    high: float
    pending: int
    """Confirmation trials of this config not finished yet (queued, running, or failed: rerun confirm)."""

    @property
    def n(self) -> int:
        return len(self.values)

    def to_dict(self) -> dict:
        """Plain data, NaN as None (JSON has no NaN)."""
        data = {**asdict(self), "n": self.n}
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in data.items()}


@dataclass(frozen=True)
class Confirmation:
    """Every confirmed config, best mean first, and what they say about the search's winner."""

    configs: tuple[Confirmed, ...]
    direction: str
    search_winner: int | None
    """The search's single-seed best trial (None with objective.cost: no one best)."""
    seed_spread: float
    """The spread one config shows over seeds: the mean of the configs' standard deviations."""
    config_spread: float
    """The spread between configs: the standard deviation of their means (NaN for one config)."""

    @property
    def winner(self) -> Confirmed | None:
        """The best mean among configs with at least one confirmation run (None before any has one)."""
        return self.configs[0] if self.configs and self.configs[0].n > 1 else None

    @property
    def pending(self) -> int:
        return sum(c.pending for c in self.configs)

    @property
    def covers_search_winner(self) -> bool:
        """The search's single-seed winner is among the configs confirmed (with a new seed run), so the
        confirmed winner was measured against it (never with objective.cost: there is no one winner)."""
        single = None if self.search_winner is None else self.of(self.search_winner)
        return single is not None and single.n > 1

    @property
    def changed(self) -> bool:
        """The confirmed winner is another config than the search's single-seed winner, which it beat."""
        return self.winner is not None and self.covers_search_winner and self.winner.trial != self.search_winner

    def of(self, number: int) -> Confirmed | None:
        return next((c for c in self.configs if c.trial == number), None)

    def to_dict(self) -> dict:
        return {
            "direction": self.direction,
            "search_winner": self.search_winner,
            "winner": None if self.winner is None else self.winner.trial,
            "changed": self.changed,
            "seed_spread": None if math.isnan(self.seed_spread) else self.seed_spread,
            "config_spread": None if math.isnan(self.config_spread) else self.config_spread,
            "configs": [c.to_dict() for c in self.configs],
        }


def load(search: optuna.Study) -> optuna.Study | None:
    """The confirmation study of `search`, or None when it was never confirmed."""
    try:
        return optuna.load_study(study_name=study_name(search.study_name), storage=search._storage)
    except KeyError:
        return None


def summarize(search: optuna.Study, confirm: optuna.Study | None = None, trials=None) -> Confirmation | None:
    """The confirmation of `search` (read from its storage unless given; `trials`: the search's trials,
    when the caller has read them), or None when there is none."""
    confirm = confirm if confirm is not None else load(search)
    if confirm is None:
        return None
    by_number = {t.number: t for t in (search.get_trials(deepcopy=False) if trials is None else trials)}
    runs: dict[int, list[optuna.trial.FrozenTrial]] = {}
    for t in confirm.get_trials(deepcopy=False):
        if TrialAttr.CONFIRM_OF in t.user_attrs:
            runs.setdefault(t.user_attrs[TrialAttr.CONFIRM_OF], []).append(t)
    maximize = search.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    configs = []
    for number, trials in runs.items():
        origin = by_number.get(number)
        if origin is None or origin.state != COMPLETE:
            continue
        done = sorted((t for t in trials if t.state == COMPLETE), key=lambda t: t.user_attrs[TrialAttr.SEED])
        values = [origin.values[0], *(t.values[0] for t in done)]
        seeds = [origin.user_attrs.get(TrialAttr.SEED), *(t.user_attrs[TrialAttr.SEED] for t in done)]
        finished = {t.user_attrs[TrialAttr.SEED] for t in done}
        pending = len({t.user_attrs[TrialAttr.SEED] for t in trials} - finished)
        mean, std, low, high = interval(values)
        configs.append(
            Confirmed(number, dict(origin.params), tuple(seeds), tuple(values), mean, std, low, high, pending)
        )
    # Configs with a confirmation run first (a config seen once, its new seeds still to come, cannot win on
    # one lucky run), then the best mean; a tie goes to the smaller spread.
    configs.sort(key=lambda c: (c.n < 2, -c.mean if maximize else c.mean, 0.0 if math.isnan(c.std) else c.std))
    spreads = [c.std for c in configs if not math.isnan(c.std)]
    means = [c.mean for c in configs]
    try:
        search_winner = search.best_trial.number if len(search.directions) == 1 else None
    except ValueError:
        search_winner = None
    return Confirmation(
        configs=tuple(configs),
        direction="maximize" if maximize else "minimize",
        search_winner=search_winner,
        seed_spread=statistics.fmean(spreads) if spreads else math.nan,
        config_spread=statistics.stdev(means) if len(means) > 1 else math.nan,
    )


def _number(x: float) -> str:
    return "-" if math.isnan(x) else format_value(x)


def verdict(c: Confirmation, metric: str) -> list[str]:
    """The lines that say how sure the winner is: the confirmed winner (and the search's when it differs),
    and the spread over seeds beside the spread between configs."""
    w = c.winner
    if w is None:
        return [f"nothing confirmed yet: {c.pending} confirmation trials not finished (run hpsearch confirm)"]
    interval_text = "" if math.isnan(w.low) else f", 95 % interval [{_number(w.low)}, {_number(w.high)}]"
    so_far = " so far" if c.pending else ""
    mean = f"{metric} mean {_number(w.mean)} over {w.n} seeds"
    lines = [f"confirmed winner{so_far}: trial {w.trial}, {mean}{interval_text}"]
    if c.changed:
        single = c.of(c.search_winner)
        was = "" if single is None else f" ({metric} {format_value(single.values[0])} with one seed)"
        lines.append(f"the search's winner was trial {c.search_winner}{was}: it did not hold up over seeds")
    elif c.covers_search_winner:
        lines.append(f"the search's winner, trial {c.search_winner}, is the confirmed winner")
    elif c.search_winner is not None:  # confirm --trials left it out: the confirmed configs never met it
        lines.append(
            f"the search's winner, trial {c.search_winner}, was not confirmed: export keeps it; "
            f"confirm it too (hpsearch confirm STUDY --trials {c.search_winner} ...) to compare"
        )
    if not math.isnan(c.seed_spread):
        between = "" if math.isnan(c.config_spread) else f"; between configs {_number(c.config_spread)}"
        lines.append(f"spread over seeds {_number(c.seed_spread)} (a config's mean standard deviation){between}")
    if c.pending:
        lines.append(f"{c.pending} confirmation trials not finished: run hpsearch confirm again")
    return lines


def table(c: Confirmation | None, metric: str) -> str:
    """The confirmed configs as a text table (best mean first), then the verdict."""
    if c is None:
        return "not confirmed: hpsearch confirm STUDY trains its best configs again with new seeds"
    rows = [["trial", "seeds", f"mean {metric}", "std", "95% interval", "values", "params"]]
    for x in c.configs:
        span = "-" if math.isnan(x.low) else f"[{_number(x.low)}, {_number(x.high)}]"
        values = " ".join(format_value(v) for v in x.values)
        rows.append([str(x.trial), str(x.n), _number(x.mean), _number(x.std), span, values, format_params(x.params)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in rows]
    return "\n".join(["confirmation (the search's trial and its new seeds):", *lines, *verdict(c, metric)])
