"""Helpers for tests and benchmarks: real servers started by ragline's own code."""
