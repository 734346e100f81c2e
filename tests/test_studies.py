"""Every shipped study file is valid, and its data and model are found (offline)."""

import pytest

from hpsearch import preflight
from hpsearch.spec import load_spec

from .conftest import ROOT, SHARED_DATA

STUDIES = sorted((ROOT / "studies").glob("*.yaml"))
# Studies that name a hub dataset are checked against the local copy the README tells users to use.
OFFLINE_OVERRIDES = {
    "banking77": [f"data.path={SHARED_DATA / 'banking77'}", "data.label_column=category"],
}


def test_studies_are_shipped():
    assert {p.stem for p in STUDIES} >= {"quickstart", "banking77"}


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_study_file_validates(path):
    spec = load_spec(path, OFFLINE_OVERRIDES.get(path.stem, []))
    checked = preflight.check(spec)
    assert checked.total_trials and checked.total_trials >= 1
    assert len(checked.labels) >= 2
    assert checked.storage_url == f"sqlite:///{path.parent / spec.name}.db"


def test_quickstart_data_is_ten_intents_of_original_queries():
    spec = load_spec(ROOT / "studies" / "quickstart.yaml")
    checked = preflight.check(spec)
    assert len(checked.labels) == 10
    assert (len(checked.raw.train), len(checked.raw.eval)) == (300, 100)
    assert not set(checked.raw.train["text"]) & set(checked.raw.eval["text"])
