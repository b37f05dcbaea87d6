"""Fake upstream servers and the helpers that run them, for tests, the benchmark and the CLI."""
