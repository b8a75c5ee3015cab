"""The help centre (CONTRACT §12): Keyguard's own articles for its users, public like a
help centre, in the page's language, with code that works against this server."""
