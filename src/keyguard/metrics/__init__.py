"""``GET /metrics`` (CONTRACT §11): Prometheus text for a root key or the metrics token."""
