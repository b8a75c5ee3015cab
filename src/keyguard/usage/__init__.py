"""Usage per key and per project (CONTRACT §10): room for its issue."""
