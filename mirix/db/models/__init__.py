"""All ORM models; importing this module registers every table on ``Base.metadata``."""

from mirix.db.base import Base
from mirix.db.models.agents import Agent, Block, Message, Step, Tool, agent_tools
from mirix.db.models.jobs import Job
from mirix.db.models.memory import (
    EpisodicMemory,
    KnowledgeVaultItem,
    MemoryEmbedding,
    MemoryHistory,
    ProceduralMemory,
    RawMemory,
    ResourceMemory,
    SemanticMemory,
)
from mirix.db.models.tenancy import AdminAccount, ApiKey, Client, Organization, User

__all__ = [
    "AdminAccount",
    "Agent",
    "ApiKey",
    "Base",
    "Block",
    "Client",
    "EpisodicMemory",
    "Job",
    "KnowledgeVaultItem",
    "MemoryEmbedding",
    "MemoryHistory",
    "Message",
    "Organization",
    "ProceduralMemory",
    "RawMemory",
    "ResourceMemory",
    "SemanticMemory",
    "Step",
    "Tool",
    "User",
    "agent_tools",
]
