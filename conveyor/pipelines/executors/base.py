"""The executor contract: run one function over many items, several at once.

A pipeline hands its independent units of work (segments, folds, tuning trials) to an
``Executor`` and gets the results back in item order, whether they ran in this process,
in a pool of local processes or on a Ray cluster. Settings pick the executor; nothing
else in Conveyor branches on where the work runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from conveyor.errors import ValidationError

T = TypeVar("T")
R = TypeVar("R")


class ExecutorSettings(BaseModel):
    """Where a pipeline's work runs and how many items run at once."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["local", "ray"] = "local"
    workers: int | None = Field(default=None, ge=1)
    address: str | None = None

    @model_validator(mode="after")
    def _address_only_for_ray(self) -> ExecutorSettings:
        if self.address is not None and self.type != "ray":
            raise ValueError("address applies only to the 'ray' executor")
        return self


class Executor(Protocol):
    """Runs ``fn(shared, item)`` for each item; implementations subclass it for ``with``."""

    name: str
    workers: int

    def map(
        self,
        fn: Callable[[Any, T], R],
        items: Sequence[T],
        shared: Any = None,
        on_result: Callable[[int, R], None] | None = None,
    ) -> list[R]:
        """Results of ``fn(shared, item)`` in the order of ``items``.

        ``fn`` must be a module-level function so workers can import it; ``shared`` (for
        example the training frame) reaches each worker once per call, not once per item.
        ``on_result(index, result)`` runs in this process as each item finishes. The first
        exception raised by ``fn`` is re-raised unchanged once unstarted items are cancelled.
        """
        ...

    def close(self) -> None:
        """Release the workers; the executor cannot be used afterwards."""
        ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def check_workers(workers: int | None) -> int | None:
    """``workers`` unchanged (None means the executor's default); rejects fewer than one."""
    if workers is not None and workers < 1:
        raise ValidationError(f"executor workers must be at least 1, got {workers}", field="executor.workers")
    return workers


def cpu_count() -> int:
    """The CPUs of this machine, at least 1."""
    return os.cpu_count() or 1
