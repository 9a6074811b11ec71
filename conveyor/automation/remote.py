"""The automation service of a remote workspace: the same interface, over the server's API.

A policy file is read here and sent as YAML; its ``retrain.pipeline`` names a file on the
server (relative: to the server's workspace folder). Agents are not remote: one runs next
to the database (``conveyor agent start`` on the server's machine).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from conveyor.automation.api import ENDPOINTS
from conveyor.automation.jobs import Job
from conveyor.automation.policy import Policy
from conveyor.automation.service import AutomationService
from conveyor.core.clock import SYSTEM_CLOCK, Clock
from conveyor.errors import ValidationError
from conveyor.server.bodies import YAML
from conveyor.server.client import RemoteService


class RemoteAutomation(RemoteService):
    """``AutomationService`` over HTTP."""

    service_type = AutomationService
    prefix = ""
    endpoints = ENDPOINTS

    def apply_policy(self, source: Policy | dict[str, Any] | str | Path) -> Policy:
        """Check and store a policy on the server; the answer masks webhook secrets."""
        if isinstance(source, Policy):
            options: dict[str, Any] = {"json": source.stored()}
        elif isinstance(source, dict):
            options = {"json": source}
        elif isinstance(source, (str, Path)):
            try:
                options = {"content": Path(source).read_bytes(), "headers": {"content-type": YAML}}
            except OSError as exc:
                raise ValidationError(f"cannot read policy file {source}: {exc.strerror}", field="file") from exc
        else:
            raise ValidationError(f"a policy is a Policy, a mapping or a YAML path, not {type(source).__name__}",
                                  field="policy")
        response = self.client.request("POST", "/automation/policies", **options)
        return Policy.model_validate_json(response.content)

    def cancel_job(self, job_id: str, clock: Clock = SYSTEM_CLOCK) -> Job:
        """Cancel a job (the server's clock dates it)."""
        if clock is not SYSTEM_CLOCK:
            raise ValidationError("clock cannot be sent to a server: it cancels on its own clock", field="clock")
        response = self.client.request("POST", f"/automation/jobs/{quote(job_id, safe='')}/cancel")
        return Job.model_validate_json(response.content)

    def agent(self, *args: Any, **kwargs: Any) -> Any:
        """Not remote: an agent runs next to the database."""
        raise ValidationError("an automation agent runs next to the database: start it on the server's machine "
                              "(conveyor agent start), not through the server", field="server")
