"""Per-key restrictions (CONTRACT §4): TOTP, certificates, signing secrets."""
