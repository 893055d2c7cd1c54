"""Compute Engine v1 API front end."""
