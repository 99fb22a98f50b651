"""Meterworks: revenue analytics and usage alerting for usage-billed businesses."""

__version__ = "0.1.0"
