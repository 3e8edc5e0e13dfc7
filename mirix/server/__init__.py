"""The server facade routes call."""

from mirix.server.server import AsyncServer, SyncServer

__all__ = ["AsyncServer", "SyncServer"]
