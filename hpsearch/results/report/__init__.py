"""The HTML report: collect (study -> ReportData: sections' data from sections.py, and the in-memory study that
Optuna's figures read) -> html (one self-contained page; figures.py draws ours, optuna_figures.py Optuna's)."""
