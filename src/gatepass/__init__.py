"""Gatepass: an identity-aware gateway for the Anthropic Messages API."""
