"""Connectors shipped with the platform, registered through the same entry points as plugins."""
