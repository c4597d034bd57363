"""Data chat: model registry, SQL guard, read-only executor, NL to SQL."""
