"""Jinja2 templates shipped inside the package, for the HTML pages Conveyor writes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jinja2


def package_template(package: str, name: str, filters: Mapping[str, Callable[..., Any]]) -> jinja2.Template:
    """Template ``name`` from ``package``'s ``templates`` folder, autoescaped, with ``filters``."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True,
    )
    environment.filters.update(filters)
    return environment.get_template(name)
