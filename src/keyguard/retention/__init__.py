"""Retention: finished webhook history and photos of long-expired sessions."""
