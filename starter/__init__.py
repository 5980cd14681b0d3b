"""Kartu's starter: the Python API and CLI for backends and ops, and the dev-stack launcher."""
