"""MIRIX server: an async-native, multi-agent memory server for LLM applications."""

__version__ = "0.1.0"
