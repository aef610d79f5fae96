"""Helpers shared by the tests (fakes, record factory, fake Lambda context, tiny model configs): import them from
here, never from conftest.py or bench/."""
