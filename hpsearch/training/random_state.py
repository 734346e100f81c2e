"""Evaluations that leave training's random state as they found it.

An evaluation draws from torch's global generator (every DataLoader iteration takes a seed from it; sampled
generation draws more), and training draws its dropout masks from that generator. Without this, every
evaluation would shift the masks of all later steps, so a trial's weights would depend on how often and
when it was evaluated (evaluation.every, a study's schedule against `hpsearch train`'s), not only on its
config and seed.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def evaluate_aside(evaluate: Callable[..., Any], device: torch.device) -> Callable[..., Any]:
    """`evaluate` run with the CPU generator (and DEVICE's, for CUDA), Python's and NumPy's random states
    restored afterwards, whatever it raised."""
    devices = [device] if device.type == "cuda" else []

    @functools.wraps(evaluate)
    def aside(*args, **kwargs):
        python_state, numpy_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=devices):
            try:
                return evaluate(*args, **kwargs)
            finally:
                random.setstate(python_state)
                np.random.set_state(numpy_state)

    return aside
