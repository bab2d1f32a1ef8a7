"""majlis: a multi-agent LLM negotiation harness."""

__version__ = "0.1.0"
