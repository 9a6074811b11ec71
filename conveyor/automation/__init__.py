"""Automation: retraining policies, the agent that runs them, safe promotion and rollback.

A policy (``load_policy`` reads it from YAML) says when a model is retrained (schedule,
drift, quality, staleness, new data), what the retrain runs, how the candidate is
promoted, how the new champion is watched and the limits on all of it. ``Agent`` runs
policies with its state in the metadata store, exactly once per trigger however many
agents run. ``AutomationService`` (``workspace.automation``) is what the faces call.
"""

from conveyor.automation.agent import Agent, Tick
from conveyor.automation.jobs import Job
from conveyor.automation.policy import Policy, load_policy, parse_policy
from conveyor.automation.promotion import Outcome
from conveyor.automation.service import AutomationService

__all__ = ["Agent", "AutomationService", "Job", "Outcome", "Policy", "Tick", "load_policy", "parse_policy"]
