"""Benchmarks that print JSON (``make bench-*``); run as ``python -m bench.<name>`` or ``python bench/<name>.py``."""
