"""Thin process entry points: parse configuration, set up logging, run a service."""
