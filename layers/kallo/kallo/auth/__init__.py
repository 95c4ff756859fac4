"""Credentials: API keys, our access tokens (JWT) and OIDC ID tokens, and the principal they yield."""
