"""Helpers shared by the tests: fakes, factories, the fake Lambda context. Import from here, never from conftest."""
