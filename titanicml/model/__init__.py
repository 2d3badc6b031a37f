"""The fitted model, its exported artifact, and the model registry."""
