"""What ``apply`` checks before it records anything: references between objects, then each
changed view against its data (columns, types, timestamps). Each failure is one
``ValidationError`` naming the object and the field."""

from __future__ import annotations

from collections.abc import Mapping

from conveyor.errors import ValidationError
from conveyor.features.definitions import (
    Definition,
    Entity,
    FeatureService,
    FeatureView,
)
from conveyor.features.dtypes import accepts, base_type, is_timestamp
from conveyor.features.engine import describe
from conveyor.features.sources import SourceContext

_KEY_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "VARCHAR"}


def check_references(state: Mapping[tuple[str, str], Definition]) -> None:
    """Every entity a view names and every view feature a service names exists in ``state``."""
    for (kind, _), obj in state.items():
        if isinstance(obj, FeatureView):
            for entity in obj.entity_names:
                if ("entity", entity) not in state:
                    raise ValidationError(f"{obj.label}: unknown entity {entity!r}", field=f"{obj.name}.entities")
            keys = [key for entity in obj.entity_names for key in state[("entity", entity)].join_keys]  # type: ignore[attr-defined]
            clash = set(keys) & set(obj.feature_names)
            if clash:
                raise ValidationError(f"{obj.label}: feature {sorted(clash)[0]!r} is also a join key",
                                      field=f"{obj.name}:{sorted(clash)[0]}")
        elif isinstance(obj, FeatureService):
            for ref in obj.refs:
                view_name, feature = ref.split(":", 1)
                view = state.get(("feature_view", view_name))
                if not isinstance(view, FeatureView):
                    raise ValidationError(f"{obj.label}: unknown feature view {view_name!r}", field=f"{obj.name}.features")
                if feature not in view.feature_names:
                    raise ValidationError(f"{obj.label}: feature view {view_name!r} has no feature {feature!r}",
                                          field=ref)


def check_view_data(view: FeatureView, entities: Mapping[str, Entity], context: SourceContext) -> dict[str, str]:
    """The view's source has its join keys, timestamps and features with compatible types.

    Returns the source's column types, for the caller's later use.
    """
    columns = describe(view, context)
    where = f"{view.label} (columns: {', '.join(columns)})"
    for entity in view.entity_names:
        for key in entities[entity].join_keys:
            if key not in columns:
                raise ValidationError(f"{where}: join key {key!r} of entity {entity!r} is not a column", field=f"{view.name}.{key}")
            if base_type(columns[key]) not in _KEY_TYPES:
                raise ValidationError(f"{view.label}: join key {key!r} is {columns[key]}; keys must be integers or strings",
                                      field=f"{view.name}.{key}")
    for field_name in ("timestamp_field", "created_timestamp_field"):
        column = getattr(view, field_name)
        if column is None:
            continue
        if column not in columns:
            raise ValidationError(f"{where}: {field_name} {column!r} is not a column", field=f"{view.name}.{field_name}")
        if not is_timestamp(columns[column]):
            raise ValidationError(f"{view.label}: {field_name} {column!r} is {columns[column]}, not a timestamp",
                                  field=f"{view.name}.{field_name}")
    for feature in view.features:
        if feature.name not in columns:
            raise ValidationError(f"{where}: feature {feature.name!r} is not a column", field=f"{view.name}:{feature.name}")
        if not accepts(feature.dtype, columns[feature.name]):
            raise ValidationError(
                f"{view.label}: feature {feature.name!r} is declared {feature.dtype} but the column is {columns[feature.name]}",
                field=f"{view.name}:{feature.name}",
            )
    return columns
