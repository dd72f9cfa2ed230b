"""The domain: deployments, versions, aliases, over the store."""

from champion.registry.service import Registry, Target

__all__ = ["Registry", "Target"]
