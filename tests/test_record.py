"""The one definition of what a trial and a study record: its keys read old studies, and the committed
reference page is what the generator writes."""

import json
import subprocess
import sys
from pathlib import Path

from hpsearch.results import record_reference
from hpsearch.results.record import CurveKey, StudyAttr, TrialAttr

ROOT = Path(__file__).resolve().parent.parent


def test_keys_are_the_stored_strings():
    # Old studies were written with bare strings: the constants must find them.
    attrs = {"wall_time_s": 1.5, "error": "boom", "curve": []}
    assert attrs[TrialAttr.WALL_TIME_S] == 1.5
    assert attrs.get(TrialAttr.ERROR) == "boom"
    assert TrialAttr("prune_reason") is TrialAttr.PRUNE_REASON
    assert json.dumps({TrialAttr.ERROR: 1}) == '{"error": 1}'
    assert StudyAttr.BEST_MODEL_TRIAL == "best_model_trial"
    assert CurveKey.TRAIN_EVAL_GAP == "train_eval_gap"


def test_every_key_is_described():
    for keys in (TrialAttr, StudyAttr, CurveKey):
        for key in keys:
            assert key.kind and key.meaning, key
            assert "|" not in key.kind + key.unit + key.meaning, f"{key}: a | breaks the markdown table"
    assert TrialAttr.WALL_TIME_S.unit == "s" and TrialAttr.PEAK_MEMORY_MB.unit == "MiB"
    assert len({str(k) for k in TrialAttr}) == len(TrialAttr)  # no key defined twice


def test_the_committed_reference_is_generated():
    committed = (ROOT / "docs" / "reference" / "trial-record.md").read_text()
    assert committed == record_reference.markdown(), (
        "run: python -m hpsearch.results.record_reference > docs/reference/trial-record.md"
    )
    printed = subprocess.run(
        [sys.executable, "-m", "hpsearch.results.record_reference"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    assert printed == committed
