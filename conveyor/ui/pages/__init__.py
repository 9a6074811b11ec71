"""The UI's pages, one module per area; each builds an ``APIRouter`` of its routes."""

from conveyor.ui.pages import (
    audit,
    auth,
    automation,
    deployments,
    experiments,
    features,
    home,
    models,
    monitoring,
    runs,
)

AREAS = (auth, home, experiments, runs, models, features, deployments, monitoring, automation, audit)
"""Every page module, in the order their routes are matched."""

__all__ = ["AREAS"]
