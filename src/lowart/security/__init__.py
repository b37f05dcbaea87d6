"""Keys, hashing, secret encryption and other security primitives."""
