"""The session report: a progress chart (chart.py) and report.md / report.html (build.py)."""
