"""Usage events, the batching recorder, and token estimation when a vendor reports none."""
