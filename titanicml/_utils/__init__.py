"""Helpers every layer may use: staged writes, hashing, the reference grammar."""
