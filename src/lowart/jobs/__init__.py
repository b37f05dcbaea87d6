"""Durable jobs: the store's rows, a runner with leases and heartbeats, and the executors."""
