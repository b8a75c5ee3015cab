"""The hash-chained audit log (CONTRACT §10): rows, appends, verification, routes."""
