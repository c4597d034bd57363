"""Connectors: the ConnectorAdapter contract, the entry-point registry and built-ins."""
