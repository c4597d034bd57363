"""Workflows: the code-first API, JSON graph versions, one compiled form and the engine."""
