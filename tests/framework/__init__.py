"""Test library (kept apart from the tests): whole clouds, clients, log capture."""
