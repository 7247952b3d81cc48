"""The HTTP service around the translator: Quart app, LiteLLM calls, streaming, logging."""
