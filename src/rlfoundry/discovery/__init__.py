"""Algorithm discovery: learned policy objectives meta-trained by evolution strategies."""

from rlfoundry.discovery.objective_search import (
    DiscoveryConfig,
    MetaState,
    ObjectiveSearch,
    final_return,
)

__all__ = ["DiscoveryConfig", "MetaState", "ObjectiveSearch", "final_return"]
