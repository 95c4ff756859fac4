"""Pydantic API models (requests and responses), separate from the stored items."""
