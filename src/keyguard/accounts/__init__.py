"""Accounts: the people who manage projects (CONTRACT §9)."""
