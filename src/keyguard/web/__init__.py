"""The server-rendered pages' kit: templates, the message catalog in templates, CSRF
tokens, security headers, and who is signed in. Feature ``pages.py`` modules use it."""
