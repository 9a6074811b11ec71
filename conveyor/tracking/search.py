"""Translate parsed run filters and orderings into SQL over the tracking tables.

Every literal is a bound parameter; a key never becomes SQL text.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, Select, and_, cast, exists, false, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from conveyor.tracking.filters import BoolOp, Comparison, Identifier, Number, OrderBy
from conveyor.tracking.tables import latest_metrics, params, runs, tags

_KEYED = {"metrics": latest_metrics, "params": params, "tags": tags}


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "in":
        return column.in_(value)
    if op == "not in":
        return column.not_in(value)
    if op == "like":
        return column.like(value)
    if op == "ilike":
        return column.ilike(value)
    return {
        "=": column.__eq__, "!=": column.__ne__, "<": column.__lt__,
        "<=": column.__le__, ">": column.__gt__, ">=": column.__ge__,
    }[op](value)


def _literal(value: Any, numeric: bool) -> Any:
    if isinstance(value, tuple):
        return tuple(_literal(item, numeric) for item in value)
    if isinstance(value, Number):
        return value.value if numeric else value.text
    return value


def _condition(node: Any) -> ColumnElement[bool]:
    if isinstance(node, BoolOp):
        parts = [_condition(operand) for operand in node.operands]
        return and_(*parts) if node.op == "and" else or_(*parts)
    comparison: Comparison = node
    ident = comparison.identifier
    if ident.entity == "attributes":
        column = runs.c[ident.key]
        numeric = ident.key in {"start_time", "end_time"}
        return _compare(column, comparison.op, _literal(comparison.value, numeric))
    table = _KEYED[ident.entity]
    numeric = ident.entity == "metrics"
    value = _literal(comparison.value, numeric)
    column = table.c.value
    if ident.entity == "params" and isinstance(comparison.value, Number) and comparison.op in {"<", "<=", ">", ">="}:
        column, value = cast(table.c.value, Float), comparison.value.value
    return exists().where(
        table.c.run_id == runs.c.id, table.c.key == ident.key, _compare(column, comparison.op, value)
    )


def _required_metric_keys(node: Any) -> set[str]:
    """Metric keys every matching run must have (from top-level ``and`` terms)."""
    if isinstance(node, Comparison):
        return {node.identifier.key} if node.identifier.entity == "metrics" and node.op != "not in" else set()
    if isinstance(node, BoolOp) and node.op == "and":
        return set().union(*(_required_metric_keys(operand) for operand in node.operands))
    return set()


def build_query(
    experiment_ids: list[str], tree: Any, order: list[OrderBy], include_deleted: bool
) -> Select[Any]:
    """The SELECT of matching run ids, ordered, without a limit."""
    query = select(runs.c.id).where(runs.c.experiment_id.in_(experiment_ids))
    query = query.where(true() if include_deleted else runs.c.deleted == false())
    if tree is not None:
        query = query.where(_condition(tree))
    required = _required_metric_keys(tree)
    for index, entry in enumerate(order):
        query = _order(query, entry, index, required, experiment_ids)
    return query.order_by(runs.c.start_time.desc(), runs.c.id)


def _order(
    query: Select[Any], entry: OrderBy, index: int, required: set[str], experiment_ids: list[str]
) -> Select[Any]:
    ident: Identifier = entry.identifier
    if ident.entity == "attributes":
        column: Any = runs.c[ident.key]
    else:
        table = _KEYED[ident.entity].alias(f"order_{index}")
        on = and_(table.c.run_id == runs.c.id, table.c.key == ident.key)
        if ident.entity == "metrics" and ident.key in required:
            # Every match has this metric: an inner join lets the database walk the
            # (experiment, key, value) index in order and stop at the limit.
            query = query.join(table, on).where(table.c.experiment_id.in_(experiment_ids))
        else:
            query = query.outerjoin(table, on)
        column = table.c.value
    ordered = column.desc() if entry.descending else column.asc()
    return query.order_by(ordered.nulls_last())

