"""The shipped pricing table (``prices.json``) and the command that rebuilds it from LiteLLM's
``model_prices_and_context_window.json``; see :mod:`automate_llm.pricing`."""
