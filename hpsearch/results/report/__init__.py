"""The HTML report: collect (study -> ReportData) -> html (ReportData -> one self-contained page)."""
