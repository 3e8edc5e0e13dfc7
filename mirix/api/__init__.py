"""HTTP layer: app factory, auth dependencies, error mapping and one router per resource."""

from mirix.api.app import create_app

__all__ = ["create_app"]
