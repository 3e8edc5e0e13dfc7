"""Pydantic models that define the wire format (requests and responses) of the REST API."""
