"""What ``apply`` would change, like a migration plan, and which changes break models.

The desired state is what the definition files declare; the current state is the newest
applied version of each object. A change breaks a model when a feature service that a
live model version consumes would lose a feature or change a feature's type.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from conveyor.features.definitions import Definition, spec_digest
from conveyor.features.schemas import Change, Plan, StoredDefinition

Specs = dict[tuple[str, str], dict[str, Any]]
ORDER = {"entity": 0, "feature_view": 1, "feature_service": 2}


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _feature_details(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[str]:
    before, after = {f["name"]: f for f in old}, {f["name"]: f for f in new}
    lines = [f"+ feature {name} ({after[name]['dtype']})" for name in after if name not in before]
    lines += [f"- feature {name}" for name in before if name not in after]
    lines += [f"~ feature {name}: {before[name]['dtype']} -> {after[name]['dtype']}"
              for name in after if name in before and before[name]["dtype"] != after[name]["dtype"]]
    return lines


def spec_details(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """One line per field that differs between two specs of the same object."""
    lines: list[str] = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key):
            continue
        if key == "features" and old.get(key) and isinstance(old[key][0], dict):
            lines += _feature_details(old[key], new.get(key) or [])
        else:
            lines.append(f"~ {key}: {_describe(old.get(key))} -> {_describe(new.get(key))}")
    return lines


def _service_types(specs: Specs, service: str) -> dict[str, str]:
    """``view:feature`` -> dtype of every feature a service serves in a state (missing ones omitted)."""
    spec = specs.get(("feature_service", service))
    if spec is None:
        return {}
    types = {}
    for ref in spec["features"]:
        view, name = ref.split(":", 1)
        for feature in specs.get(("feature_view", view), {}).get("features", []):
            if feature["name"] == name:
                types[ref] = feature["dtype"]
    return types


def _breaks(current: Specs, target: Specs, service: str, consumers: list[str]) -> tuple[list[str], set[str]]:
    """Messages for what a service used by ``consumers`` loses, and the views responsible."""
    old, new = _service_types(current, service), _service_types(target, service)
    lost = [ref for ref in old if ref not in new]
    retyped = [ref for ref in old if ref in new and new[ref] != old[ref]]
    if not lost and not retyped:
        return [], set()
    what = ", ".join([f"loses {ref}" for ref in lost] + [f"changes {ref} {old[ref]} -> {new[ref]}" for ref in retyped])
    message = f"feature service {service!r}, used by {', '.join(consumers)}: {what}"
    return [message], {ref.split(":", 1)[0] for ref in lost + retyped}


def make_plan(
    desired: Sequence[Definition],
    current: dict[tuple[str, str], StoredDefinition],
    prune: bool,
    consumers: Callable[[list[str]], dict[str, list[str]]],
    versions: dict[tuple[str, str], int],
) -> Plan:
    """Compare the declared objects with the applied ones.

    Args:
        desired: the declared objects.
        current: the newest applied version of each live object.
        prune: whether objects not declared are deleted (a whole ``features/`` folder) or kept.
        consumers: service names -> live model versions consuming each.
        versions: (kind, name) -> newest version number, deleted objects included.
    """
    now: Specs = {key: stored.spec for key, stored in current.items()}
    target: Specs = {} if prune else dict(now)
    target.update({(obj.kind, obj.name): obj.to_spec() for obj in desired})
    changes: dict[tuple[str, str], Change] = {}
    unchanged = []
    for key in sorted(set(now) | set(target), key=lambda k: (ORDER[k[0]], k[1])):
        kind, name = key
        version = versions.get(key, 0) + 1
        if key not in now:
            changes[key] = Change(action="create", kind=kind, name=name, version=version)
        elif key not in target:
            changes[key] = Change(action="delete", kind=kind, name=name, version=version)
        elif spec_digest(now[key]) != spec_digest(target[key]):
            changes[key] = Change(action="update", kind=kind, name=name, version=version,
                                  details=spec_details(now[key], target[key]))
        else:
            unchanged.append(f"{kind.replace('_', ' ')} {name}")
    services = [name for kind, name in now if kind == "feature_service"]
    for service, users in sorted(consumers(services).items()):
        messages, views = _breaks(now, target, service, users)
        own = changes.get(("feature_service", service))
        culprits = [own] if own else [changes[("feature_view", v)] for v in sorted(views) if ("feature_view", v) in changes]
        for change in culprits:
            change.breaking += messages
    return Plan(changes=list(changes.values()), unchanged=unchanged)
