"""Cached views of users, keys, models and fallback chains."""
