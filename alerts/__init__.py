"""Alerts: quota thresholds and usage anomalies (see ../shared/DESIGN.md, Alerts)."""
