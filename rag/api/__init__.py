"""HTTP API of the app."""
