"""The versions of the packages that change a trial's results, read in the process that ran it: recorded on
every trial (`TrialAttr.VERSIONS`), carried by the export's manifest, compared again by `hpsearch train`."""

from __future__ import annotations

import functools
import importlib.metadata
import sys

from hpsearch.spec.catalog import installed_metrics

# Every trial runs on these (distribution names, as pip knows them).
ALWAYS = ("hpsearch", "optuna", "torch", "transformers", "datasets", "accelerate", "tokenizers", "numpy")
# These change results only where a trial used them: recorded when their module was imported in the
# trial's process (distribution -> module). transformers' Trainer imports peft whenever it is installed.
WHEN_IMPORTED = {
    "peft": "peft",
    "scikit-learn": "sklearn",
    "rouge-score": "rouge_score",
    "sentencepiece": "sentencepiece",
    "safetensors": "safetensors",
}
# Not distributions: the CUDA torch was built for and the cuDNN it loads (absent on a CPU build).
CUDA, CUDNN = "cuda", "cudnn"


@functools.cache
def _distribution(name: str) -> str | None:
    """An installed distribution's version (cached: what a process imported does not change under it)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def version_of(name: str) -> str | None:
    """The version of one recorded name in this process: a distribution, or `cuda` or `cudnn`; None if absent."""
    if name in (CUDA, CUDNN):
        import torch

        if name == CUDA:
            return torch.version.cuda
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        return None if cudnn is None else str(cudnn)
    return _distribution(name)


@functools.cache
def _metric_distributions() -> dict[str, str]:
    """The module of each `hpsearch.metrics` entry point -> the distribution that provides it."""
    found = {}
    for ep in installed_metrics().values():
        if ep.dist is not None:
            found[ep.module] = ep.dist.name
    return found


def current() -> dict[str, str]:
    """The versions this process runs with: the packages every trial uses, those it imported that change
    results, and the distributions of the user metrics it loaded; sorted, installed ones only."""
    names = [*ALWAYS, *((CUDA, CUDNN) if "torch" in sys.modules else ())]  # exporting needs no torch
    names += [dist for dist, module in WHEN_IMPORTED.items() if module in sys.modules]
    names += [dist for module, dist in _metric_distributions().items() if module in sys.modules]
    found = {name: version_of(name) for name in names}
    return {name: found[name] for name in sorted(found) if found[name] is not None}


def differing(recorded: dict[str, str]) -> dict[str, dict[str, str | None]]:
    """The recorded packages whose version here differs: `{name: {"recorded": version, "now": version}}`
    (`now` None: not installed here)."""
    now = {name: version_of(name) for name in recorded}
    return {
        name: {"recorded": str(version), "now": now[name]}
        for name, version in recorded.items()
        if version is not None and now[name] != str(version)
    }


def describe_differing(differ: dict[str, dict[str, str | None]]) -> str:
    """One line: `torch 2.13.0 here, 2.12.0 recorded; peft not installed here, 0.13.0 recorded`."""
    here = {name: "not installed" if v["now"] is None else v["now"] for name, v in differ.items()}
    return "; ".join(f"{name} {here[name]} here, {v['recorded']} recorded" for name, v in differ.items())
