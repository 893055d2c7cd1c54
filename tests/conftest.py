"""Shared fixtures for every tier."""
