"""The dashboard (CONTRACT §12): the rooms a signed-in person works in, page by page
over the same services and views as the management API."""
