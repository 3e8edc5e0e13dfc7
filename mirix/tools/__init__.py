"""Tool definitions (JSON schemas) the agents are offered."""
