"""The LLM layer: one async interface over OpenAI (and compatible servers), Azure OpenAI, Anthropic and Gemini.

    registry = LLMRegistry(recorder=store_step)          # once per process
    client = registry.get(agent.llm_config)              # cached per configuration
    completion = await client.complete([SystemMessage(...), UserMessage(...)], tools=[...])

Importing this package imports no provider SDK; each is imported when a configuration first needs it.
"""

from mirix.llm.base import CallRecord, LLMClient, Recorder
from mirix.llm.endpoints import NO_KEY_NEEDED, Endpoint, resolve_endpoint, supported_endpoint_types
from mirix.llm.errors import (
    LLMBadResponseError,
    LLMConfigurationError,
    LLMConnectionError,
    LLMContextWindowError,
    LLMError,
    LLMProviderError,
    LLMRateLimitError,
    LLMTimeoutError,
)
from mirix.llm.factory import LLMRegistry, create_llm_client
from mirix.llm.retry import RetryPolicy
from mirix.llm.toolparse import extract_tool_calls, parse_arguments
from mirix.llm.types import (
    AssistantMessage,
    Completion,
    ImagePart,
    Message,
    StreamEvent,
    SystemMessage,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolResultMessage,
    ToolSpec,
    Usage,
    UserMessage,
)

__all__ = [
    "NO_KEY_NEEDED",
    "AssistantMessage",
    "CallRecord",
    "Completion",
    "Endpoint",
    "ImagePart",
    "LLMBadResponseError",
    "LLMClient",
    "LLMConfigurationError",
    "LLMConnectionError",
    "LLMContextWindowError",
    "LLMError",
    "LLMProviderError",
    "LLMRateLimitError",
    "LLMRegistry",
    "LLMTimeoutError",
    "Message",
    "Recorder",
    "RetryPolicy",
    "StreamEvent",
    "SystemMessage",
    "TextDelta",
    "TextPart",
    "ToolCall",
    "ToolCallDelta",
    "ToolChoice",
    "ToolResultMessage",
    "ToolSpec",
    "Usage",
    "UserMessage",
    "create_llm_client",
    "extract_tool_calls",
    "parse_arguments",
    "resolve_endpoint",
    "supported_endpoint_types",
]
