"""Experiment tracking: experiments, runs, params, metrics, artifacts, datasets, search."""

from conveyor.tracking.context import seed_everything
from conveyor.tracking.run import Run
from conveyor.tracking.schemas import Experiment, RunData, RunInfo, RunOrigin, RunStatus
from conveyor.tracking.service import TrackingService

__all__ = ["Experiment", "Run", "RunData", "RunInfo", "RunOrigin", "RunStatus", "TrackingService", "seed_everything"]
