"""The compliance side of the CLI: verify the trail, query it, report on it, re-evaluate it, mirror it."""
