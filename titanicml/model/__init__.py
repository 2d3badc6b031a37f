"""The fitted model: estimator, serving fast path, ensemble, exported artifact, manifest."""
