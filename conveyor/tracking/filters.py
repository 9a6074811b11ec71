"""The run search language: a real parser, bound parameters, errors with positions.

    metrics.auc > 0.9 and params.model = 'lgbm' and tags.team = 'risk'
    (params.model = 'rf' or params.model IN ('lgbm', 'xgb')) and attributes.status = 'FINISHED'
    tags.`my key` LIKE 'abc%' and metrics.`val loss` <= 0.1

Entities: ``metrics`` (latest value of a key), ``params``, ``tags`` and ``attributes``
(``status``, ``name``/``run_name``, ``run_id``, ``user``, ``start_time``,
``end_time``, ``parent_id``, ``git_commit``). ``order_by`` entries are the same
identifiers followed by ``ASC`` or ``DESC``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from conveyor.errors import ValidationError

GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: atom (_AND atom)*
?atom: comparison
     | "(" or_expr ")"
comparison: identifier COMPARATOR value          -> compare
          | identifier _IN "(" value ("," value)* ")"  -> in_list
          | identifier _NOT _IN "(" value ("," value)* ")"  -> not_in_list
          | identifier LIKE string              -> like
identifier: ENTITY "." key
key: NAME | BACKQUOTED | string
?value: NUMBER -> number
      | string
string: SINGLE | DOUBLE
order: identifier DIRECTION?

ENTITY.2: /(metrics?|params?|tags?|attributes?|run)(?=\.)/i
_AND.2: /and\b/i
_OR.2: /or\b/i
_IN.2: /in\b/i
_NOT.2: /not\b/i
LIKE.2: /i?like\b/i
DIRECTION.2: /(asc|desc)\b/i
COMPARATOR: "<=" | ">=" | "!=" | "<>" | "=" | "<" | ">"
NAME: /[A-Za-z_][A-Za-z0-9_\-.\/:]*/
BACKQUOTED: /`[^`]+`/
SINGLE: /'(?:[^'\\]|\\.)*'/
DOUBLE: /"(?:[^"\\]|\\.)*"/
NUMBER: /[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/
%import common.WS
%ignore WS
"""

ENTITY_ALIASES = {
    "metric": "metrics", "metrics": "metrics",
    "param": "params", "params": "params",
    "tag": "tags", "tags": "tags",
    "attribute": "attributes", "attributes": "attributes", "run": "attributes",
}
ATTRIBUTES = {
    "status": "status", "name": "name", "run_name": "name", "run_id": "id", "id": "id",
    "user": "user", "start_time": "start_time", "end_time": "end_time",
    "parent_id": "parent_id", "git_commit": "git_commit",
}
NUMERIC_ATTRIBUTES = {"start_time", "end_time"}


@dataclass(frozen=True)
class Number:
    """A numeric literal, with its text for comparisons against params and tags."""

    value: float
    text: str


@dataclass(frozen=True)
class Identifier:
    """``entity.key``; attributes are mapped to run columns."""

    entity: str
    key: str


@dataclass(frozen=True)
class Comparison:
    """One test of an identifier against a literal or list of literals."""

    identifier: Identifier
    op: str
    value: Any


@dataclass(frozen=True)
class BoolOp:
    """``and`` / ``or`` of sub-expressions."""

    op: str
    operands: tuple[Any, ...]


@dataclass(frozen=True)
class OrderBy:
    """One ``order_by`` entry."""

    identifier: Identifier
    descending: bool


def _unquote(text: str) -> str:
    return text[1:-1].replace("\\'", "'").replace('\\"', '"').replace("\\\\", "\\")


@v_args(inline=True)
class _ToAst(Transformer):
    def key(self, token: Token | str) -> str:
        text = str(token)
        return text[1:-1] if text.startswith("`") else text

    def string(self, token: Token) -> str:
        return _unquote(str(token))

    def number(self, token: Token) -> Number:
        return Number(float(token), str(token))

    def identifier(self, entity: Token, key: str) -> Identifier:
        kind = ENTITY_ALIASES[str(entity).lower()]
        if kind == "attributes":
            if key.lower() not in ATTRIBUTES:
                raise ValidationError(
                    f"filter: unknown attribute '{key}' (known: {', '.join(sorted(ATTRIBUTES))})", field="filter"
                )
            key = ATTRIBUTES[key.lower()]
        return Identifier(kind, key)

    def compare(self, identifier: Identifier, op: Token, value: Any) -> Comparison:
        symbol = "!=" if str(op) == "<>" else str(op)
        _check_types(identifier, symbol, value)
        return Comparison(identifier, symbol, value)

    def in_list(self, identifier: Identifier, *values: Any) -> Comparison:
        return Comparison(identifier, "in", tuple(values))

    def not_in_list(self, identifier: Identifier, *values: Any) -> Comparison:
        return Comparison(identifier, "not in", tuple(values))

    def like(self, identifier: Identifier, op: Token, pattern: str) -> Comparison:
        if identifier.entity == "metrics":
            raise ValidationError(f"filter: LIKE does not apply to metric '{identifier.key}'", field="filter")
        return Comparison(identifier, str(op).lower(), pattern)

    def and_expr(self, *operands: Any) -> BoolOp:
        return BoolOp("and", operands)

    def or_expr(self, *operands: Any) -> BoolOp:
        return BoolOp("or", operands)

    def order(self, identifier: Identifier, direction: Token | None = None) -> OrderBy:
        return OrderBy(identifier, direction is not None and str(direction).lower() == "desc")


def _check_types(identifier: Identifier, op: str, value: Any) -> None:
    numeric = identifier.entity == "metrics" or identifier.key in NUMERIC_ATTRIBUTES
    if numeric and not isinstance(value, Number):
        raise ValidationError(
            f"filter: {identifier.entity}.{identifier.key} is numeric, compared with the string {value!r}",
            field="filter",
        )


_filter_parser = Lark(GRAMMAR, start="start", parser="lalr", propagate_positions=False)
_order_parser = Lark(GRAMMAR, start="order", parser="lalr")


def _parse(parser: Lark, text: str, what: str) -> Any:
    try:
        return _ToAst().transform(parser.parse(text))
    except VisitError as exc:
        if isinstance(exc.orig_exc, ValidationError):
            raise exc.orig_exc from None
        raise
    except UnexpectedInput as exc:
        raise ValidationError(_position_message(text, exc, what), field=what) from None


_EXPECTED = {
    "SINGLE": "a string", "DOUBLE": "a string", "NUMBER": "a number", "LPAR": "'('", "RPAR": "')'",
    "ENTITY": "metrics.<key>, params.<key>, tags.<key> or attributes.<name>", "COMPARATOR": "a comparison",
    "COMMA": "','", "$END": "the end", "DIRECTION": "ASC or DESC",
}


def _position_message(text: str, exc: UnexpectedInput, what: str) -> str:
    column = getattr(exc, "column", None)
    at_end = isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    if at_end or isinstance(exc, UnexpectedEOF) or column is None or column < 1:
        return f"{what}: unexpected end of input in {text!r}"
    found = text[column - 1 : column + 29].split(" ")[0] or text[column - 1]
    if isinstance(exc, UnexpectedToken):
        expected = sorted({_EXPECTED.get(name, name.strip("_").lower()) for name in exc.expected})
        hint = f"; expected {' or '.join(expected)}" if expected and len(expected) <= 8 else ""
    else:
        hint = ""
    return f"{what}: unexpected {found!r} at position {column}{hint}: {text}"


@functools.lru_cache(maxsize=256)
def parse_filter(text: str | None) -> Any:
    """The AST of a filter string, or ``None`` for an empty one.

    Raises:
        ValidationError: malformed text; the message gives the position.
    """
    if text is None or not text.strip():
        return None
    return _parse(_filter_parser, text, "filter")


def parse_order_by(entries: list[str] | None) -> list[OrderBy]:
    """Parsed ``order_by`` entries such as ``"metrics.auc DESC"``."""
    return [_parse_order(entry) for entry in entries or []]


@functools.lru_cache(maxsize=256)
def _parse_order(entry: str) -> OrderBy:
    return _parse(_order_parser, entry, "order_by")
