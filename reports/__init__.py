"""KPI reports from the archive projection (SEEDS §9): kpi.py computes, html.py renders the page."""
