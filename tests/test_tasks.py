"""Every task module satisfies the Task protocol with the same members, so no caller probes a task."""

import inspect

import pytest

from hpsearch.tasks import TASKS, Task

MEMBERS = [name for name in dir(Task) if not name.startswith("_")] + list(Task.__annotations__)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_has_every_member_of_the_protocol(name):
    task = TASKS[name]
    for member in MEMBERS:
        assert hasattr(task, member), f"{name} lacks {member}"
    for member, declared in vars(Task).items():
        if member.startswith("_") or not inspect.isfunction(declared):
            continue
        wanted = list(inspect.signature(declared).parameters)[1:]  # without self
        assert list(inspect.signature(getattr(task, member)).parameters) == wanted, f"{name}.{member}"
    assert isinstance(task.PEFT_TASK_TYPE, str)
    for hook in ("preprocess_logits_for_metrics", "compute_metrics", "derived_metrics"):
        assert getattr(task, hook) is None or callable(getattr(task, hook))


def test_only_causal_lm_derives_metrics():
    assert TASKS["causal-lm"].derived_metrics({"eval_loss": 0.0}) == {"eval_perplexity": 1.0}
    assert TASKS["sequence-classification"].derived_metrics is None and TASKS["seq2seq"].derived_metrics is None


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_can_augment_its_train_split(name):
    # What preflight once probed for: the protocol now guarantees it, so augmentation needs no check per task.
    row = {"text": "a b", "prompt": "a b", "completion": "c", "source": "a b", "target": "c", "label": "x"}
    changed = TASKS[name].augment_inputs(row, str.upper)
    assert changed != row and callable(TASKS[name].encode_train)
