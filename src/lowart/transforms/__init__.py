"""Sandboxed transform scripts (Starlark): the worker processes that run them, the pool that
talks to those workers, and the in-memory table of which script runs for which model
(docs/transforms.md)."""
