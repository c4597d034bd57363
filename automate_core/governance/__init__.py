"""Secrets, redaction, audit, budgets, rate limits and the egress policy."""
