"""Dagster code location for Meterworks: a thin shell over the plain ``meterworks`` modules."""
