"""Leaked-key reports from secret scanners (CONTRACT §10)."""
