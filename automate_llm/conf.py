"""``AUTOMATE_LLM`` settings, read like DRF's ``api_settings``."""

from __future__ import annotations

from automate_core.conf import AppSettings

llm_settings = AppSettings(
    "AUTOMATE_LLM",
    defaults={
        # Seconds a provider call may take before it is abandoned (and retried or failed over).
        "TIMEOUT": 60.0,
        # Attempts per provider/model pair on 429, 5xx and connection errors (1 = no retry).
        "MAX_ATTEMPTS": 3,
        # Exponential backoff between attempts: base * 2**n, capped; a Retry-After header wins.
        "RETRY_BASE_DELAY": 0.5,
        "RETRY_MAX_DELAY": 30.0,
        # Used when a call names no max_tokens and its model config has none.
        "DEFAULT_MAX_TOKENS": 1024,
        # Prices per million tokens that override the shipped table, keyed "provider_type/model":
        # {"openai/gpt-4o-mini": {"input": "0.15", "output": "0.60", "cached": "0.075"}}.
        "PRICING": {},
    },
)
