"""Test helpers shared across the suite: fakes, record factory, fake Lambda context, tiny model configs."""
