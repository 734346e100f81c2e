"""Issue 5's features together, as one study file uses them: a LoRA sweep of a decoder with early
stopping, augmentation, divergence pruning and generated-text metrics, exported and retrained; and
the model as a choice with dropout, against cost, on the Pareto front."""

from __future__ import annotations

import json

import optuna
import pytest
import yaml

from hpsearch import cli

from .test_causal_lm import lm_study, write_pairs

pytestmark = pytest.mark.slow


def trials_of(path, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{path.parent / f'{name}.db'}").trials


def test_a_lora_sweep_of_a_decoder_with_every_guard_exports_a_config_that_trains_the_adapter(
    tmp_path, tiny_causal_lm, capsys
):
    from peft import AutoPeftModelForCausalLM

    path = lm_study(
        tmp_path,
        tiny_causal_lm,
        write_pairs(tmp_path / "pairs"),
        search={
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
            "per_device_train_batch_size": [8, 16],
            "optim": ["adamw_torch", "sgd"],
            "lora_r": [4, 8],
            "augmentation_probability": {"type": "float", "low": 0.0, "high": 0.3},
        },
        finetune="lora",
        lora={"alpha": 16, "target_modules": "c_attn"},
        augmentation={"ops": ["word_deletion", "char_noise"]},
        early_stopping={"patience": 2},
        generation={"metrics": ["exact_match"], "samples": 4, "max_new_tokens": 6},
        sampler={"type": "random", "seed": 0},
        pruner={"type": "median", "n_startup_trials": 1},
        budget={"n_trials": 3},
    )
    assert cli.main(["run", str(path), "--quiet"]) == 0
    trials = trials_of(path, "lm")
    assert len(trials) == 3 and all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    for t in trials:
        a = t.user_attrs
        assert a["finetune"]["method"] == "lora" and a["finetune"]["r"] == t.params["lora_r"]
        assert a["trainable_parameters"] < a["total_parameters"]
        assert a["augmentation"]["probability"] == t.params["augmentation_probability"]
        assert all("eval_exact_match" in point for point in a["curve"])
        assert set(t.params) == {
            "learning_rate",
            "per_device_train_batch_size",
            "optim",
            "lora_r",
            "augmentation_probability",
        }
    best = tmp_path / "best.yaml"
    assert cli.main(["export", str(path), "--out", str(best)]) == 0
    arguments = yaml.safe_load(best.read_text())
    assert "lora_r" not in arguments and "augmentation_probability" not in arguments  # not TrainingArguments
    manifest = yaml.safe_load((tmp_path / "best.manifest.yaml").read_text())
    assert manifest["finetune"]["method"] == "lora"
    out = tmp_path / "adapter"
    assert cli.main(["train", str(best), "--out", str(out), "--tolerance", "1e-6"]) == 0
    result = json.loads((out / "hpsearch_train.json").read_text())
    assert result["saved"] == "LoRA adapter" and result["matches"] is True
    best_trial = next(t for t in trials if t.number == result["trial"])
    assert result["augmentation"] == best_trial.user_attrs["augmentation"]
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["r"] == best_trial.params["lora_r"]
    assert AutoPeftModelForCausalLM.from_pretrained(out) is not None


def wider_gpt2(tmp_path, tiny_causal_lm):
    """A second decoder with the same tokenizer: twice the width of the tiny one."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    folder = tmp_path / "wider"
    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_lm)
    config = GPT2Config.from_pretrained(tiny_causal_lm)
    config.n_embd = 64
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_model_choice_and_dropout_against_cost_export_a_pareto_trial_that_retrains_its_model(
    tmp_path, tiny_causal_lm, capsys
):
    wider = wider_gpt2(tmp_path, tiny_causal_lm)
    path = lm_study(
        tmp_path,
        tiny_causal_lm,
        write_pairs(tmp_path / "pairs"),
        search={
            "model": [str(tiny_causal_lm), str(wider)],
            "dropout": [0.0, 0.2],
            "learning_rate": [5e-3],
        },
        model={"save_best": False},  # no name_or_path: search.model names the models
        objective={"metric": "loss", "cost": "peak_memory_mb"},
        sampler={"type": "grid"},
    )
    assert cli.main(["run", str(path), "--quiet"]) == 0
    trials = trials_of(path, "lm")
    assert len(trials) == 4 and all(t.state.name == "COMPLETE" and len(t.values) == 2 for t in trials)
    assert {(t.params["model"], t.params["dropout"]) for t in trials} == {
        (m, d) for m in (str(tiny_causal_lm), str(wider)) for d in (0.0, 0.2)
    }
    for t in trials:
        assert t.values[1] == t.user_attrs["peak_memory_mb"]
        assert t.user_attrs["model"] == t.params["model"]
        assert set(t.user_attrs.get("dropout", {}).values()) <= {t.params["dropout"]}
    params = {t.params["model"]: t.user_attrs["total_parameters"] for t in trials}
    assert params[str(wider)] > params[str(tiny_causal_lm)]

    capsys.readouterr()
    assert cli.main(["export", str(path)]) == 2  # two objectives: the user picks a trial of the front
    assert "--trial" in capsys.readouterr().err
    front = optuna.load_study(study_name="lm", storage=f"sqlite:///{path.parent / 'lm.db'}").best_trials
    chosen = max(front, key=lambda t: t.params["dropout"])
    best = tmp_path / "chosen.yaml"
    assert cli.main(["export", str(path), "--trial", str(chosen.number), "--out", str(best)]) == 0
    out = tmp_path / "model"
    assert cli.main(["train", str(best), "--out", str(out), "--tolerance", "1e-6"]) == 0
    result = json.loads((out / "hpsearch_train.json").read_text())
    assert result["trial"] == chosen.number and result["base_model"] == chosen.params["model"]
    assert result["matches"] is True
    assert result["dropout"] == chosen.user_attrs["dropout"]
    assert set(result["dropout"].values()) == {chosen.params["dropout"]}
