"""Plotly figure builders, one module per domain, reused by notebooks, dashboards and export."""
