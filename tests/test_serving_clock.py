"""The model server stamps its prediction log with the clock it is given, so a server on
simulated time logs (and indexes) simulated times that monitoring windows find."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pandas as pd
from registry_support import CATEGORICAL, NUMERIC, credit_frame, log_version
from starlette.applications import Starlette

from conveyor.core.clock import ManualClock
from conveyor.core.workspace import Workspace
from conveyor.serving.app import create_app
from conveyor.serving.prediction_log import PredictionIndex

MARCH_1_2024 = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)


async def _predict_in_process(app: Starlette, model: str, rows: pd.DataFrame, requests: int) -> None:
    """POST ``rows`` to ``model`` ``requests`` times through the app's lifespan; leaving it
    closes (flushes) the prediction log."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serving") as client:
            for _ in range(requests):
                response = await client.post(f"/v1/models/{model}/predict",
                                             json={"instances": rows.to_dict("records")})
                assert response.status_code == 200, response.text


def test_the_prediction_log_holds_the_servers_clock_time_not_the_machines(workspace: Workspace) -> None:
    workspace.registry.create_registered_model("credit")
    log_version(workspace, "credit", credit_frame())
    workspace.registry.set_alias("credit", "champion", 1)
    clock = ManualClock(MARCH_1_2024.timestamp())
    rows = credit_frame(rows=3, seed=9)[NUMERIC + CATEGORICAL]
    asyncio.run(_predict_in_process(create_app(workspace, ["credit@champion"], clock=clock), "credit", rows, 3))
    index = PredictionIndex(workspace.metadata)
    files = index.files(model="credit")
    assert [(f.date, f.rows) for f in files] == [("2024-03-01", 9)]
    assert files[0].first_time == files[0].last_time == clock.now()
    logged = pd.read_parquet(files[0].path)
    assert (pd.to_datetime(logged["time"], utc=True) == pd.Timestamp(MARCH_1_2024)).all()
    around = index.files(since=clock.now() - 60, until=clock.now() + 60)
    assert [f.path for f in around] == [files[0].path]
