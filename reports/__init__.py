"""reports: render a twin run directory (CSV tables + summary.json) into report.html, and compare runs."""
