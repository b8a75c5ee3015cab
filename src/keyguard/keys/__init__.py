"""API keys (CONTRACT §3): their rows, service, views, routes and schemas."""
