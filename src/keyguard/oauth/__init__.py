"""OAuth 2 for partner apps (CONTRACT §8): room for its issue; its token verifier plugs
into ``PolicyEngine.token_verifier``."""
