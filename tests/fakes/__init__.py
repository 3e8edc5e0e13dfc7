"""Test doubles for the paid LLM APIs: a scripted provider served over real HTTP."""

from tests.fakes.embedder import embed
from tests.fakes.provider import FakeProvider
from tests.fakes.recorded import RecordedRequest
from tests.fakes.replies import Fault, Reply, StatusFault, TimeoutFault, ToolCall
from tests.fakes.script import StreamLog

__all__ = [
    "FakeProvider",
    "Fault",
    "RecordedRequest",
    "Reply",
    "StatusFault",
    "StreamLog",
    "TimeoutFault",
    "ToolCall",
    "embed",
]
