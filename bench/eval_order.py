"""One evaluation of a classifier, the eval rows in the split's order against shortest first.

hpsearch batches a classifier's eval rows by length (`TaskData.evaluated`): a batch is padded to its longest
row, so rows of one length pad least. This times `Trainer.evaluate` on the same model and rows both ways,
in alternating order, --repeats times each, and checks that the metrics are the same. In-process, through
hpsearch's own data path (`classification.prepare` on a Banking77 subset, all-MiniLM-L6-v2).

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python bench/eval_order.py        # 300 rows, batch 64
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import _common as common
import yaml


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_data_args(p, train_samples=1000, eval_samples=300, each="(unused)")
    p.add_argument("--eval-batch-size", type=int, default=64, help="per_device_eval_batch_size")
    p.add_argument("--repeats", type=int, default=5, help="evaluations each way")
    p.add_argument("--out", type=Path, default=common.RESULTS / "eval_order.json", help="results JSON")
    opts = p.parse_args(argv)

    from transformers import Trainer, TrainingArguments
    from transformers.utils import logging

    from hpsearch.orchestration import preflight
    from hpsearch.spec import load_spec
    from hpsearch.tasks import classification

    logging.set_verbosity_error()
    work = Path(tempfile.mkdtemp(prefix="hpsearch-bench-eval-order-"))
    subset = common.write_subset(opts.data, work / "data", opts.train_samples, opts.eval_samples, 0)
    study = {**common.study_head("eval-order", work / "data", opts.max_length), "budget": {"n_trials": 1}}
    study["search"] = {"learning_rate": [1e-4]}
    (work / "study.yaml").write_text(yaml.safe_dump(study))
    spec = load_spec(work / "study.yaml")
    checked = preflight.check(spec)
    data = classification.prepare(spec, checked.raw, checked.tokenizer)
    args = TrainingArguments(
        output_dir=str(work / "out"), per_device_eval_batch_size=opts.eval_batch_size, report_to="none"
    )
    trainer = Trainer(
        model=classification.build_model(checked.model_path, data.labels),
        args=args,
        data_collator=classification.collator(checked.tokenizer),
        compute_metrics=classification.compute_metrics,
    )
    trainer.evaluate(data.eval)  # warm-up
    seconds, metrics = {"split order": [], "by length": []}, {}
    for r in range(opts.repeats):
        for name in ("split order", "by length") if r % 2 == 0 else ("by length", "split order"):
            started = time.perf_counter()
            metrics[name] = trainer.evaluate(data.eval if name == "split order" else data.evaluated)
            seconds[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    result = {
        "subset": subset,
        "eval_batch_size": opts.eval_batch_size,
        "seconds": seconds,
        "median_s": medians,
        "speed_up": medians["split order"] / medians["by length"],
        "same_accuracy": metrics["split order"]["eval_accuracy"] == metrics["by length"]["eval_accuracy"],
        "eval_loss": {name: m["eval_loss"] for name, m in metrics.items()},
    }
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
