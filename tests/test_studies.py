"""Every shipped study file is valid, and its data and model are found (offline)."""

import pytest

from hpsearch.orchestration import preflight
from hpsearch.spec import load_spec

from .conftest import ROOT, SHARED_DATA

STUDIES = sorted((ROOT / "studies").glob("*.yaml"))
# Studies that name a hub dataset are checked against the local copy the README tells users to use.
OFFLINE_OVERRIDES = {
    "banking77": [f"data.path={SHARED_DATA / 'banking77'}", "data.label_column=category"],
}


def test_studies_are_shipped():
    assert {p.stem for p in STUDIES} >= {
        "quickstart",
        "banking77",
        "support_assistant",
        "code_generation",
        "summarization",
    }


def offline_llm(path, tmp_path, model) -> list[str]:
    """An LLM or seq2seq study names a hub model and dataset; offline, its structure (task, columns, objective,
    search, TrainingArguments) is checked against the tiny GPT-2 and rows with the study's columns."""
    import json

    spec = load_spec(path)
    if spec.task == "seq2seq":
        columns = [spec.data.source_column, spec.data.target_column]
    else:
        columns = [spec.data.prompt_column, spec.data.completion_column]
    rows = [{columns[0]: f"question {i} about my order", columns[1]: f"answer {i} sure"} for i in range(40)]
    data = tmp_path / "data"
    data.mkdir()
    for split in {spec.data.train_split, spec.data.eval_split} - {None}:
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [f"model.name_or_path={model}", f"data.path={data}", "data.max_length=64"]


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_study_file_validates(path, tmp_path, tiny_causal_lm, request):
    overrides = OFFLINE_OVERRIDES.get(path.stem, [])
    task = load_spec(path).task
    if task == "causal-lm":
        overrides = offline_llm(path, tmp_path, tiny_causal_lm)
    elif task == "seq2seq":  # the same check against the tiny BART (positions: 128)
        model = request.getfixturevalue("tiny_seq2seq")
        overrides = [*offline_llm(path, tmp_path, model), "data.max_target_length=32"]
    spec = load_spec(path, overrides)
    checked = preflight.check(spec)
    assert checked.total_trials and checked.total_trials >= 1
    assert len(checked.labels) >= 2 or spec.task in ("causal-lm", "seq2seq")
    assert checked.storage_url == f"sqlite:///{path.parent / spec.name}.db"


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_hub_names_in_a_study_stay_hub_names(path):
    """A hub id is not a path beside the study file, dots in its name (Qwen2.5) or not."""
    import yaml

    raw = yaml.safe_load(path.read_text())
    spec = load_spec(path)
    for written, loaded in (
        (raw["model"]["name_or_path"], spec.model.name_or_path),
        (raw["data"]["path"], spec.data.path),
    ):
        if not (path.parent / written).exists():
            assert loaded == written


def test_quickstart_data_is_ten_intents_of_original_queries():
    spec = load_spec(ROOT / "studies" / "quickstart.yaml")
    checked = preflight.check(spec)
    assert len(checked.labels) == 10
    assert (len(checked.raw.train), len(checked.raw.eval)) == (300, 100)
    assert not set(checked.raw.train["text"]) & set(checked.raw.eval["text"])
