"""The ``flopsmeter`` command."""
