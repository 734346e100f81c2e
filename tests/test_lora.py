"""finetune: lora through peft: adapters in trials, searched settings, exported and retrained."""

from __future__ import annotations

import json

import optuna
import pytest

from hpsearch import cli

from .test_causal_lm import lm_study, write_pairs


def stored(tmp_path, name):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / name}.db").trials


@pytest.mark.slow
def test_a_lora_sweep_trains_adapters_and_hpsearch_train_saves_one(tmp_path, tiny_causal_lm):
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM

    path = lm_study(
        tmp_path,
        tiny_causal_lm,
        write_pairs(tmp_path / "pairs"),
        finetune="lora",
        lora={"alpha": 16, "dropout": 0.0},
        search={"learning_rate": [1e-2], "lora_r": [2, 8]},
    )
    assert cli.main(["run", str(path), "--quiet"]) == 0
    trials = stored(tmp_path, "lm")
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    by_r = {t.params["lora_r"]: t.user_attrs for t in trials}
    assert {r: a["finetune"]["r"] for r, a in by_r.items()} == {2: 2, 8: 8}
    for attrs in by_r.values():
        assert 0 < attrs["trainable_parameters"] < attrs["total_parameters"] / 10
        assert "lora_r" not in attrs["training_arguments"]  # not a TrainingArguments field
    assert by_r[8]["trainable_parameters"] == 4 * by_r[2]["trainable_parameters"]  # rank x (in + out)

    out = tmp_path / "best.yaml"
    assert cli.main(["export", str(path), "--out", str(out)]) == 0
    manifest = (tmp_path / "best.manifest.yaml").read_text()
    assert "method: lora" in manifest
    adapter = tmp_path / "adapter"
    assert cli.main(["train", str(out), "--out", str(adapter), "--tolerance", "1e-3"]) == 0
    result = json.loads((adapter / "hpsearch_train.json").read_text())
    assert result["saved"] == "LoRA adapter" and result["matches"] is True
    assert (adapter / "adapter_config.json").exists() and not (adapter / "config.json").exists()
    loaded = AutoPeftModelForCausalLM.from_pretrained(adapter)
    best = min(trials, key=lambda t: t.value)
    assert loaded.peft_config["default"].r == best.params["lora_r"]

    merged = tmp_path / "merged"
    assert cli.main(["train", str(out), "--out", str(merged), "--merge"]) == 0
    assert not (merged / "adapter_config.json").exists()
    model = AutoModelForCausalLM.from_pretrained(merged)
    assert not any("lora" in name for name, _ in model.named_parameters())


@pytest.mark.parametrize("name", ["activation_checkpointing", "gradient_checkpointing"])
def test_lora_trains_with_activation_checkpointing(tmp_path, tiny_causal_lm, name):
    """Frozen embeddings give checkpointed blocks inputs without gradients; the adapter must still learn. A study
    may name it either way: transformers 5.25 renamed gradient_checkpointing, and takes the old name until 6."""
    from safetensors.torch import load_file

    path = lm_study(
        tmp_path,
        tiny_causal_lm,
        write_pairs(tmp_path / "pairs"),
        model={"name_or_path": str(tiny_causal_lm), "save_best": True},
        finetune="lora",
        search={"learning_rate": [1e-2]},
        evaluation={"every": 0.5},
        train={"num_train_epochs": 1, "use_cpu": True, name: True},
    )
    assert cli.main(["run", str(path), "--quiet"]) == 0
    [trial] = stored(tmp_path, "lm")
    assert trial.state.name == "COMPLETE"
    assert trial.user_attrs["training_arguments"][name] is True  # as the study names it, for the export
    assert trial.user_attrs["training_arguments_all"]["activation_checkpointing"] is True  # what transformers ran
    weights = load_file(tmp_path / "lm.best" / "model" / "adapter_model.safetensors")
    lora_b = [w for name, w in weights.items() if "lora_B" in name]
    assert lora_b and all(w.abs().sum() > 0 for w in lora_b)  # peft starts B at zero: it moved only if trained


@pytest.mark.slow
def test_finetune_itself_can_be_searched(make_study):
    path = make_study(
        sampler={"type": "grid"},
        search={"learning_rate": [1e-3], "finetune": ["full", "lora"]},
        budget={"n_trials": 2},
    )
    assert cli.main(["run", str(path), "--quiet"]) == 0
    trials = stored(path.parent, "tiny")
    kinds = {t.params["finetune"]: t.user_attrs for t in trials}
    assert kinds["full"]["finetune"] == "full"
    assert kinds["full"]["trainable_parameters"] == kinds["full"]["total_parameters"]
    assert kinds["lora"]["finetune"]["method"] == "lora"
    assert kinds["lora"]["trainable_parameters"] < kinds["full"]["trainable_parameters"] / 5
    assert {t.state.name for t in trials} == {"COMPLETE"}


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"finetune": "qlora"}, "finetune: 'qlora' is not allowed; full or lora"),
        ({"finetune": "lora", "lora": {"r": 0}}, "lora.r: 0 is not allowed; a whole number >= 1"),
        ({"search__lora_dropout": [0.1, 1.5], "finetune": "lora"}, "search.lora_dropout: 1.5 is not allowed"),
        ({"search__lora_r": [4, 8]}, "search.lora_r: is used only with finetune: lora (set it, or search finetune)"),
        ({"lora": {"r": 4}}, "lora: is used only with finetune: lora"),
        ({"lora": {"rank": 4}, "finetune": "lora"}, "lora.rank: unknown key"),
        ({"lora": {"alpha": True}, "finetune": "lora"}, "lora.alpha: must be int or float, got True"),
    ],
)
def test_bad_lora_settings_exit_2(make_study, capsys, changes, message):
    path = make_study(**changes)
    assert cli.main(["validate", str(path)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "changes, field, problem",
    [
        ({"lora": {"target_modules": "q_proj,v_proj"}}, "lora.target_modules", "q_proj, v_proj: no such module"),
        (
            {"search": {"learning_rate": [1e-2], "lora_target_modules": ["c_attn", "q_proj"]}},
            "search.lora_target_modules",
            "q_proj: no such module",
        ),
        # modules it has, that peft's LoRA cannot wrap: get_peft_model would fail every trial
        (
            {"lora": {"target_modules": "c_attn,ln_1"}},
            "lora.target_modules",
            "ln_1: not a layer LoRA can wrap (LayerNorm)",
        ),
        (
            {"lora": {"target_modules": "attn,mlp"}},
            "lora.target_modules",
            "attn, mlp: not layers LoRA can wrap (GPT2Attention, GPT2MLP)",
        ),
    ],
)
def test_lora_modules_the_model_lacks_or_lora_cannot_wrap_are_refused_before_anything_is_written(
    tmp_path, tiny_causal_lm, capsys, changes, field, problem
):
    path = lm_study(tmp_path, tiny_causal_lm, write_pairs(tmp_path / "pairs"), finetune="lora", **changes)
    assert cli.main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{field}: {problem} in model " in err, err
    # what GPT-2 calls the layers LoRA can wrap (its Conv1D and Embedding layers), and nothing else
    assert err.rstrip().endswith("its layers LoRA can wrap end in: c_attn, c_fc, c_proj, lm_head, wpe, wte"), err
    assert not (tmp_path / "lm.db").exists()
