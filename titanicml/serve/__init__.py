"""Online scoring: request dialects, key auth, the ASGI app and its request log."""
