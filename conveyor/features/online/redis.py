"""The shared online store: Redis, for teams and serving fleets.

Layout: one hash per online table, ``<namespace>:ol:<table>``, field = entity key, value =
the event time as a 20-digit number (epoch µs + 2**63, so every int64 fits and the digits
order like the times) followed by the feature values as a JSON array. Staging for a job is
a hash of the same layout, ``<namespace>:stage:<table>:<job>``. Staging and commit run as
Lua scripts: Redis executes a script atomically, so the commit's merge under the
event-time guard, and the deletion of the staging hash, happen all together or not at all.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring_ascii
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
import redis

from conveyor.errors import Unavailable
from conveyor.features.online.base import OnlineTable, batch_columns

_OFFSET = 2**63
_ROWS_PER_CALL = 1000  # staged rows per script call: keeps each call to a few milliseconds of Redis time

# merge(target, kv): kv is {key1, value1, key2, value2, ...}; per key the value with the
# greatest time wins, and it replaces the target's value only if not older. Returns the
# number of keys written. HMGET/HSET go by chunks of 1000 keys (Lua's unpack limit is ~8000).
# The time prefixes all have 20 digits, so comparing them as strings compares the times.
_MERGE = """
local sub, call = string.sub, redis.call
local function not_older(a, b) return sub(a, 1, 20) >= sub(b, 1, 20) end
local function merge(target, kv)
  local applied = 0
  for s = 1, #kv, 2000 do
    local best, order, n = {}, {}, 0
    for i = s, math.min(s + 1999, #kv), 2 do
      local k, v = kv[i], kv[i + 1]
      local b = best[k]
      if b == nil then n = n + 1; order[n] = k; best[k] = v
      elseif not_older(v, b) then best[k] = v end
    end
    local current = call('HMGET', target, unpack(order))
    local out, m = {}, 0
    for j = 1, n do
      local k = order[j]
      local c, v = current[j], best[k]
      if not c or not_older(v, c) then out[m + 1] = k; out[m + 2] = v; m = m + 2 end
    end
    if m > 0 then call('HSET', target, unpack(out)) end
    applied = applied + m / 2
  end
  return applied
end
"""
_STAGE = _MERGE + "return merge(KEYS[1], ARGV)"
# KEYS[1] staging hash, KEYS[2] live hash. Into a missing live hash the staging hash is
# renamed (its keys are unique already); otherwise HSCAN pages keep the script's memory small.
_COMMIT = _MERGE + """
if call('EXISTS', KEYS[1]) == 0 then return 0 end
if call('EXISTS', KEYS[2]) == 0 then
  call('RENAME', KEYS[1], KEYS[2])
  return call('HLEN', KEYS[2])
end
local applied, cursor = 0, '0'
repeat
  local page = call('HSCAN', KEYS[1], cursor, 'COUNT', 1000)
  cursor = page[1]
  if #page[2] > 0 then applied = applied + merge(KEYS[2], page[2]) end
until cursor == '0'
call('UNLINK', KEYS[1])
return applied
"""

_NULL = "null"


def _float(value: float) -> str:
    text = float.__repr__(value)
    return text if text[-1].isdigit() else _SPECIAL_FLOATS[text]


_SPECIAL_FLOATS = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}  # as json.dumps writes them
# Per dtype, a value as a JSON token: building rows column by column is ~3x faster than json.dumps per row.
_TOKENS: dict[str, Callable[[Any], str]] = {
    "int64": int.__repr__, "int32": int.__repr__, "timestamp": int.__repr__, "float64": _float, "float32": _float,
    "string": encode_basestring_ascii, "bool": lambda value: "true" if value else "false",
}

_F = TypeVar("_F", bound=Callable[..., Any])


def _reachable(method: _F) -> _F:
    """Turn a lost or refused connection into ``Unavailable`` naming the store."""

    @functools.wraps(method)
    def wrapper(self: RedisOnlineStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise Unavailable(f"online store {self.url} is unreachable: {error}") from error

    return wrapper  # type: ignore[return-value]


def _redact(url: str) -> str:
    """The URL without its password, fit for an error message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _decode(raw: bytes | None) -> tuple | None:
    return None if raw is None else (int(raw[:20]) - _OFFSET, *json.loads(raw[20:]))


class RedisOnlineStore:
    """An ``OnlineStore`` in Redis under ``namespace``; safe to share between threads."""

    def __init__(self, url: str, namespace: str) -> None:
        self.url = _redact(url)
        self.namespace = namespace
        self._client = redis.Redis.from_url(url)
        self._stage_script = self._client.register_script(_STAGE)
        self._commit_script = self._client.register_script(_COMMIT)

    def _live(self, table: OnlineTable) -> str:
        return f"{self.namespace}:ol:{table.name}"

    def _staging(self, table: OnlineTable, job: str) -> str:
        return f"{self.namespace}:stage:{table.name}:{job}"

    @_reachable
    def stage(self, table: OnlineTable, job: str, batch: pa.RecordBatch) -> None:
        keys, stamps, *features = batch_columns(table, batch)
        tokens = [[_NULL if v is None else _TOKENS[dtype](v) for v in column]
                  for (_, dtype), column in zip(table.features, features, strict=True)]
        rows = map(",".join, zip(*tokens)) if tokens else [""] * len(keys)
        args: list[str] = [""] * (2 * len(keys))
        args[0::2] = keys
        args[1::2] = [f"{ts + _OFFSET:020d}[{row}]" for ts, row in zip(stamps, rows, strict=True)]
        staging = self._staging(table, job)
        pipe = self._client.pipeline(transaction=False)
        for start in range(0, len(args), 2 * _ROWS_PER_CALL):
            self._stage_script(keys=[staging], args=args[start:start + 2 * _ROWS_PER_CALL], client=pipe)
        pipe.execute()

    @_reachable
    def commit(self, table: OnlineTable, job: str) -> int:
        return int(self._commit_script(keys=[self._staging(table, job), self._live(table)]))

    @_reachable
    def discard(self, table: OnlineTable, job: str) -> None:
        self._client.unlink(self._staging(table, job))

    @_reachable
    def read(self, table: OnlineTable, keys: Sequence[str]) -> list[tuple | None]:
        if len(keys) == 1:
            return [_decode(self._client.hget(self._live(table), keys[0]))]
        if not keys:
            return []
        raws = self._client.hmget(self._live(table), keys)
        # One json.loads over all values is ~3x faster than one per value.
        arrays = iter(json.loads(b"[" + b",".join([raw[20:] for raw in raws if raw is not None]) + b"]"))
        return [None if raw is None else (int(raw[:20]) - _OFFSET, *next(arrays)) for raw in raws]

    @_reachable
    def count(self, table: OnlineTable) -> int:
        return int(self._client.hlen(self._live(table)))

    @_reachable
    def drop(self, table: OnlineTable) -> None:
        stages = list(self._client.scan_iter(match=self._staging(table, "*"), count=1000))
        self._client.unlink(self._live(table), *stages)

    def close(self) -> None:
        self._client.close()
