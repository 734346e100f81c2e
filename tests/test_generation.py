"""Generated-output metrics: ROUGE and exact match on known strings, prompts, left padding,
user metrics from installed entry points, the generation section's errors, and a causal-lm sweep
whose objective is the exact match of generated completions."""

from __future__ import annotations

import shutil
import subprocess
import sys

import optuna
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hpsearch import cli
from hpsearch.orchestration import preflight
from hpsearch.spec import GenerationSpec, SpecError, catalog, load_spec
from hpsearch.tasks import causal_lm
from hpsearch.tasks.task_data import build_sample
from hpsearch.training import generation, scoring

from .test_causal_lm import lm_study, write_pairs

# --- metrics on known strings --------------------------------------------------------------------


def test_rouge_is_one_for_identical_and_zero_for_disjoint_texts():
    for name in ("rouge1", "rouge2", "rougeL"):
        assert scoring.BUILT_IN[name](["the parcel arrived today"], ["the parcel arrived today"]) == 1.0
        assert scoring.BUILT_IN[name](["refund my money"], ["the parcel arrived today"]) == 0.0


def test_rouge_on_a_partial_overlap_matches_the_hand_computed_f_measure():
    # "cat sat" against "the cat sat down":
    # rouge1: 2 shared words; precision 2/2, recall 2/4 -> F = 2 * 1 * 0.5 / 1.5 = 2/3
    # rouge2: 1 shared bigram (cat sat); precision 1/1, recall 1/3 -> F = 2 * 1/3 / (4/3) = 1/2
    # rougeL: longest common subsequence "cat sat" (2): as rouge1 -> 2/3
    prediction, reference = ["cat sat"], ["the cat sat down"]
    assert scoring.BUILT_IN["rouge1"](prediction, reference) == pytest.approx(2 / 3)
    assert scoring.BUILT_IN["rouge2"](prediction, reference) == pytest.approx(1 / 2)
    assert scoring.BUILT_IN["rougeL"](prediction, reference) == pytest.approx(2 / 3)
    # rougeL follows word order where rouge1 does not: "sat cat" shares 2 words but a subsequence of 1
    assert scoring.BUILT_IN["rougeL"](["sat cat"], reference) == pytest.approx(2 * 0.5 * 0.25 / 0.75)
    # the mean over rows: identical (1) and disjoint (0)
    assert scoring.BUILT_IN["rouge1"](["a b", "c"], ["a b", "d"]) == pytest.approx(0.5)


def test_exact_match_ignores_surrounding_whitespace_only():
    assert scoring.exact_match([" refund \n", "Refund"], ["refund", "refund"]) == 0.5
    assert scoring.exact_match([], []) == 0.0


# --- prompts and generation ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(tiny_causal_lm):
    tok = AutoTokenizer.from_pretrained(tiny_causal_lm)
    causal_lm.ensure_padding(tok)
    return tok


def test_a_prompt_is_built_as_training_builds_it(tokenizer):
    shown, ids, reference = causal_lm.generation_row(tokenizer, {"prompt": "refund", "completion": "sure"}, 64, False)
    assert tokenizer.decode(ids) == "<|user|>refund<|end|><|assistant|>"  # the generation prompt
    assert (shown, reference) == ("refund", "sure")
    chat = [
        {"role": "user", "content": "where is my parcel"},
        {"role": "assistant", "content": "it shipped"},
        {"role": "user", "content": "thanks"},
        {"role": "assistant", "content": "sure"},
    ]
    shown, ids, reference = causal_lm.generation_row(tokenizer, {"messages": chat}, 64, True)
    assert tokenizer.decode(ids) == tokenizer.apply_chat_template(chat[:3], tokenize=False, add_generation_prompt=True)
    assert (shown, reference) == ("thanks", "sure")
    assert causal_lm.generation_row(tokenizer, {"messages": chat[:1]}, 64, True) is None
    plain = AutoTokenizer.from_pretrained(tokenizer.name_or_path)
    plain.chat_template = None
    _, ids, _ = causal_lm.generation_row(plain, {"prompt": "where is my parcel", "completion": " x"}, 3, False)
    assert ids == plain("where is my parcel", add_special_tokens=False)["input_ids"][-3:]  # its end kept


def test_batched_generation_pads_on_the_left_and_leaves_the_tokenizer_and_mode_alone(tokenizer, tiny_causal_lm):
    model = AutoModelForCausalLM.from_pretrained(tiny_causal_lm)
    model.train()
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in ("refund", "where is my parcel please")]
    batched = generation.generate(model, tokenizer, prompts, max_new_tokens=6, batch_size=2)
    alone = [generation.generate(model, tokenizer, [p], max_new_tokens=6, batch_size=1)[0] for p in prompts]
    assert batched == alone  # padding changed nothing: it went on the left, masked
    assert tokenizer.padding_side == "right"  # the training collator pads labels on this side
    assert model.training
    with torch.no_grad():  # greedy: the first generated token is the argmax after the prompt (no dropout)
        logits = model.eval()(torch.tensor([prompts[0]])).logits[0, -1]
    first = tokenizer.decode([int(logits.argmax())], skip_special_tokens=True).strip()
    assert alone[0].startswith(first)


def test_outputs_end_at_the_chat_templates_end_of_turn_and_decoding_ignores_the_checkpoints_penalties(
    tokenizer, tiny_causal_lm
):
    model = AutoModelForCausalLM.from_pretrained(tiny_causal_lm)
    model.generation_config.update(repetition_penalty=1.3, no_repeat_ngram_size=3, do_sample=True, top_k=5)
    end_of_turn = tokenizer.convert_tokens_to_ids("<|end|>")  # what the fixture's template puts after an answer
    stops = causal_lm.stop_tokens(tokenizer)
    assert set(stops) == {tokenizer.eos_token_id, end_of_turn}
    seen = {}

    def generate(**kwargs):
        seen.update(kwargs)
        return kwargs["input_ids"]

    model.generate = generate
    prompt = [tokenizer("refund", add_special_tokens=False)["input_ids"]]
    generation.generate(model, tokenizer, prompt, max_new_tokens=5, batch_size=1, stop_ids=stops)
    config = seen["generation_config"]
    assert set(config.eos_token_id) == {tokenizer.eos_token_id, end_of_turn}
    assert (config.do_sample, config.num_beams, config.max_new_tokens) == (False, 1, 5)
    assert (config.repetition_penalty, config.no_repeat_ngram_size) == (1.0, 0)
    assert model.generation_config.repetition_penalty == 1.3  # the model's own config is left alone


def test_a_too_long_chat_pair_loses_its_prompt_start_not_its_answer(tokenizer):
    prompt = " ".join(["where is my parcel please"] * 20)
    row = causal_lm.encode_row(tokenizer, {"prompt": prompt, "completion": "refund money"}, 24, chat=False)
    learnt = [t for t in row["labels"] if t != -100]
    whole = causal_lm.encode_row(tokenizer, {"prompt": "x", "completion": "refund money"}, 64, chat=False)
    assert len(row["input_ids"]) == 24 and learnt == [t for t in whole["labels"] if t != -100]
    assert row["input_ids"][-len(learnt) :] == learnt  # the answer and its end of turn close the row


@pytest.mark.parametrize("precision", [None, torch.bfloat16])
def test_generation_runs_in_the_trials_mixed_precision(tokenizer, tiny_causal_lm, precision):
    model = AutoModelForCausalLM.from_pretrained(tiny_causal_lm)
    seen = []
    model.lm_head.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    prompt = [tokenizer("refund", add_special_tokens=False)["input_ids"]]
    assert generation.generate(model, tokenizer, prompt, max_new_tokens=2, batch_size=1, autocast=precision)
    assert set(seen) == {precision or torch.float32}
    assert model.lm_head.weight.dtype == torch.float32  # the weights stay as they are


def test_the_sample_is_the_first_rows_of_the_eval_split():
    rows = [(f"in {i}", [i], f"ref {i}") for i in range(10)]
    sample = build_sample(rows, GenerationSpec(metrics=("rougeL",), samples=4, max_new_tokens=5))
    assert sample.inputs == ("in 0", "in 1", "in 2", "in 3") and sample.references[-1] == "ref 3"
    assert build_sample(rows, GenerationSpec()) is None  # no metrics: off


# --- user metrics from installed packages ---------------------------------------------------------


def install_metric_package(folder) -> None:
    """A distribution as pip leaves it: a module and a dist-info whose entry_points.txt registers
    `answer_length` (mean words of the outputs, a number to minimise) under hpsearch.metrics."""
    (folder / "short_answers.py").write_text(
        "def answer_length(predictions, references):\n"
        "    return sum(len(p.split()) for p in predictions) / max(len(predictions), 1)\n"
    )
    info = folder / "short_answers-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: short-answers\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[hpsearch.metrics]\nanswer_length = short_answers:answer_length\n")


@pytest.fixture
def metric_package(tmp_path, monkeypatch):
    folder = tmp_path / "site"
    folder.mkdir()
    install_metric_package(folder)
    monkeypatch.syspath_prepend(str(folder))
    return folder


def test_an_installed_entry_point_is_a_metric(metric_package):
    assert "answer_length" in catalog.installed_metrics()
    assert catalog.known_metrics()[:4] == ("exact_match", "rouge1", "rouge2", "rougeL")
    metric = scoring.load("answer_length")
    assert scoring.score({"answer_length": metric}, ["a b c", "d"], ["x", "y"]) == {"answer_length": 2.0}


def test_a_user_metric_as_objective_needs_a_direction(tmp_path, tiny_causal_lm, metric_package):
    data = write_pairs(tmp_path / "pairs")
    named = {"generation": {"metrics": ["answer_length"], "max_new_tokens": 8}}
    assert load_spec(lm_study(tmp_path, tiny_causal_lm, data, **named)).objective.metric == "loss"  # on the curve
    path = lm_study(tmp_path, tiny_causal_lm, data, objective={"metric": "answer_length"}, **named)
    with pytest.raises(SpecError, match="objective.direction: is required for 'answer_length', a user metric"):
        load_spec(path)
    path = lm_study(
        tmp_path, tiny_causal_lm, data, objective={"metric": "answer_length", "direction": "minimize"}, **named
    )
    assert load_spec(path).objective.direction == "minimize"


@pytest.mark.slow
def test_a_metric_package_on_pythonpath_is_found_by_another_process(tmp_path):
    """The route users take: a fresh interpreter finds the package's entry point through PYTHONPATH."""
    import os

    site = tmp_path / "site"
    site.mkdir()
    install_metric_package(site)
    code = (
        "from hpsearch.spec import catalog; from hpsearch.training import scoring; "
        "print(catalog.known_metrics()[-1], scoring.load('answer_length')(['a b c'], ['x']))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["answer_length", "3.0"]


def test_a_broken_metric_package_fails_validation(tmp_path, tiny_causal_lm, metric_package, capsys, monkeypatch):
    monkeypatch.delitem(sys.modules, "short_answers", raising=False)  # imported by an earlier test
    (metric_package / "short_answers.py").write_text("raise ImportError('numpy is missing')\n")
    path = lm_study(
        tmp_path,
        tiny_causal_lm,
        write_pairs(tmp_path / "pairs"),
        generation={"metrics": ["answer_length"], "max_new_tokens": 8},
    )
    assert cli.main(["validate", str(path)]) == 2
    assert "generation.metrics: 'answer_length' cannot be loaded: numpy is missing" in capsys.readouterr().err


# --- the generation section's errors ------------------------------------------------------------------


def test_generation_is_refused_for_classification(make_study, capsys):
    path = make_study(generation={"metrics": ["exact_match"]})
    assert cli.main(["validate", str(path)]) == 2
    assert "generation: is for tasks causal-lm, seq2seq, not sequence-classification" in capsys.readouterr().err


@pytest.mark.parametrize(
    "changes, field, message",
    [
        (
            {"generation": {"metrics": ["bleu"]}},
            "generation.metrics",
            "'bleu' is not a metric; built in: exact_match, rouge1, rouge2, rougeL; installed: none",
        ),
        (
            {"objective": {"metric": "rougeL"}},
            "objective.metric",
            "'rougeL' is not allowed; allowed: loss, perplexity",
        ),
        (
            {"generation": {"metrics": ["exact_match"], "max_new_tokens": 8}, "objective": {"metric": "rougeL"}},
            "objective.metric",
            "'rougeL' is not allowed; allowed: loss, perplexity, exact_match",
        ),
        ({"generation": {"samples": 8}}, "generation.metrics", "is required"),
        (
            {"generation": {"metrics": ["rougeL"], "max_new_tokens": 48}},
            "generation.max_new_tokens",
            "48 leaves no room for the prompt: prompt and output share data.max_length (48)",
        ),
        ({"generation": {"metrics": ["rougeL", "rougeL"]}}, "generation.metrics", "names a metric twice"),
        ({"generation": {"metrics": ["perplexity"]}}, "generation.metrics", "'perplexity' is measured by causal-lm"),
        ({"generation": {"metrics": ["rougeL"], "temperature": 1}}, "generation.temperature", "unknown key"),
    ],
)
def test_bad_generation_settings_exit_2_naming_the_field(tmp_path, tiny_causal_lm, capsys, changes, field, message):
    path = lm_study(tmp_path, tiny_causal_lm, write_pairs(tmp_path / "pairs"), **changes)
    assert cli.main(["validate", str(path)]) == 2
    assert f"{path}: {field}: {message}" in capsys.readouterr().err
    assert not (tmp_path / "lm.db").exists()


# --- a causal-lm sweep scored on its generated completions ----------------------------------------------

# Short answers made of the tiny tokenizer's own words: a few tokens each, memorised in a few steps.
SHORT_ANSWERS = {
    "track": "parcel shipped",
    "refund": "refund money",
    "password": "reset password",
    "cancel": "order stop",
}


def write_short_pairs(folder, n_train: int = 48, n_eval: int = 16):
    from .conftest import write_requests

    def row(intent: str, question: str) -> dict:
        return {"question": question, "answer": " " + SHORT_ANSWERS[intent]}

    return write_requests(folder, row, n_train, n_eval)


@pytest.mark.slow
def test_a_causal_lm_sweep_can_maximise_the_exact_match_of_generated_completions(
    tmp_path, tiny_causal_lm, metric_package
):
    """The tiny GPT-2 (its chat template removed: prompt text, completion, EOS) learns four short
    answers; the exact match of its greedy completions climbs at the evaluations and is the objective."""
    model = tmp_path / "plain-gpt2"
    shutil.copytree(tiny_causal_lm, model)
    tok = AutoTokenizer.from_pretrained(model)
    tok.chat_template = None
    (model / "chat_template.jinja").unlink(missing_ok=True)
    tok.save_pretrained(model)
    path = lm_study(
        tmp_path,
        model,
        write_short_pairs(tmp_path / "pairs"),
        generation={"metrics": ["exact_match", "answer_length"], "samples": 8, "max_new_tokens": 6},
        objective={"metric": "exact_match"},
        search={"learning_rate": [1e-2], "per_device_train_batch_size": [8]},
        evaluation={"every": 0.25},
        train={"num_train_epochs": 25, "use_cpu": True},
    )
    assert cli.main(["run", str(path), "--quiet"]) == 0
    study = optuna.load_study(study_name="lm", storage=f"sqlite:///{tmp_path / 'lm.db'}")
    (trial,) = study.trials
    curve = trial.user_attrs["curve"]
    assert all({"eval_exact_match", "eval_answer_length", "eval_perplexity"} <= set(p) for p in curve)
    assert trial.value == curve[-1]["eval_exact_match"] and study.direction.name == "MAXIMIZE"
    assert curve[-1]["eval_exact_match"] >= 0.75  # memorised
    spec = load_spec(path)  # the untrained model gets none of the same sample right
    checked = preflight.check(spec)
    sample = causal_lm.prepare(spec, checked.raw, checked.tokenizer).generation
    assert len(sample.encoded) == 8
    untrained = generation.generate(
        AutoModelForCausalLM.from_pretrained(model), checked.tokenizer, sample.encoded, 6, 8
    )
    assert scoring.exact_match(untrained, list(sample.references)) == 0.0
    assert curve[-1]["eval_answer_length"] == pytest.approx(2.0)  # the user metric, on the same outputs
    examples = trial.user_attrs["generated_examples"]
    assert len(examples) == 3 and all(e["reference"].strip() in SHORT_ANSWERS.values() for e in examples)
    assert sum(e["output"] == e["reference"].strip() for e in examples) >= 2
