"""KPI reports from the archive projection (SEEDS §9): kpi.py computes, html.py renders the page.

May import models/ and domain/; the CLI passes it rows read through archive/.
"""
