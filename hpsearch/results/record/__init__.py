"""What hpsearch records in the study storage, defined once: each trial's and each study's user attributes
and the keys of a learning-curve point (key, type, unit, meaning). `python -m hpsearch.results.record_reference`
writes docs/reference/trial-record.md from these definitions."""

from hpsearch.results.record.key import RecordKey
from hpsearch.results.record.study import CURVE_METRICS_MEANING, EVAL_PREFIX, CurveKey, StudyAttr
from hpsearch.results.record.trial import TrialAttr

__all__ = ["CURVE_METRICS_MEANING", "EVAL_PREFIX", "CurveKey", "RecordKey", "StudyAttr", "TrialAttr"]
