"""Projects (CONTRACT §3): their rows, service, routes and schemas."""
