"""Fixtures of the Sparkplug tests: a fresh group id per test and our host client on it."""

from tests.support.sparkplug_fixtures import group, host  # noqa: F401 (fixtures)
