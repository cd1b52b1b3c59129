"""The relay's limits, shared by every worker: token buckets and a connection count in Redis.

Microsoft 365, Google Workspace and provider relays cap messages per minute, hour and day, and
concurrent connections. Each worker asks Redis before each message; a Lua script makes the check
and the spending of a token one atomic step, so the limits hold across all workers together.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from redis import Redis

# KEYS: one hash per bucket. ARGV: now_ms, most tokens wanted, then (capacity, refill_per_ms) per bucket.
# Takes as many whole tokens as every bucket has, up to the most wanted, from every bucket; or,
# when some bucket has not one, none. Returns the tokens taken (> 0), or minus the ms to wait
# for the emptiest bucket to hold one.
_TAKE = """
local now = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local wait = 0
local levels = {}
for i, key in ipairs(KEYS) do
  local cap = tonumber(ARGV[2 * i + 1])
  local rate = tonumber(ARGV[2 * i + 2])
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or cap
  local ts = tonumber(state[2]) or now
  tokens = math.min(cap, tokens + (now - ts) * rate)
  levels[i] = tokens
  if tokens < 1 then
    wait = math.max(wait, math.ceil((1 - tokens) / rate))
  end
  want = math.min(want, math.floor(tokens))
end
if wait > 0 then return -wait end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'tokens', levels[i] - want, 'ts', now)
  redis.call('PEXPIRE', key, math.ceil(tonumber(ARGV[2 * i + 1]) / tonumber(ARGV[2 * i + 2])) + 1000)
end
return want
"""

# KEYS[1]: a sorted set of connection holders scored by expiry. ARGV: now_ms, max, holder, ttl_ms.
_CONNECT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[4]), ARGV[3])
  return 1
end
return 0
"""

WINDOWS_MS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}


@dataclass
class Limits:
    per_minute: int = 0
    per_hour: int = 0
    per_day: int = 0
    connections: int = 0

    @property
    def any(self) -> bool:
        return any((self.per_minute, self.per_hour, self.per_day))


class RelayLimiter:
    """Limits for one relay, enforced across every worker sharing this Redis.

    A limiter made for many messages (a batch's connection) takes its tokens from Redis in
    blocks of up to `block`, spending them one message at a time: one round trip to Redis per
    block rather than per message. Tokens are taken before the messages they pay for go out,
    never after, so the limits hold as before; a block's tokens left unspent when the
    connection closes are simply not used (a block is at most a hundredth of the smallest
    limit, and never more than BLOCK_MAX)."""

    BLOCK_MAX = 20

    def __init__(self, redis: Redis, relay: str, limits: Limits, block: int = 1):
        self.redis, self.limits, self.prefix = redis, limits, f"mailer:relay:{relay}"
        self._take = redis.register_script(_TAKE)
        self._connect = redis.register_script(_CONNECT)
        self._buckets = [(f"{self.prefix}:{name}", cap, cap / WINDOWS_MS[name])
                         for name, cap in (("minute", limits.per_minute), ("hour", limits.per_hour),
                                           ("day", limits.per_day)) if cap]
        self.holder = uuid.uuid4().hex
        smallest = min((cap for _key, cap, _rate in self._buckets), default=0)
        self.block = max(1, min(block, self.BLOCK_MAX, smallest // 100))
        self.held = 0  # tokens taken and not yet spent

    def wait_for_token(self, sleep=time.sleep, give_up_after: float | None = None) -> bool:
        """Block until a message may be sent (True), or give up after `give_up_after` seconds (False)."""
        if not self._buckets:
            return True
        if self.held:
            self.held -= 1
            return True
        started = time.monotonic()
        keys = [b[0] for b in self._buckets]
        args = [x for b in self._buckets for x in b[1:]]
        while True:
            taken = int(self._take(keys=keys, args=[int(time.time() * 1000), self.block, *args]))
            if taken > 0:
                self.held = taken - 1
                return True
            wait_ms = -taken
            if give_up_after is not None and time.monotonic() - started + wait_ms / 1000 > give_up_after:
                return False
            sleep(min(wait_ms, 5_000) / 1000)

    def acquire_connection(self, ttl_s: float = 600, sleep=time.sleep, timeout: float = 300) -> bool:
        """Hold one of the relay's connection slots (True), or give up after `timeout` seconds."""
        if not self.limits.connections:
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._connect(keys=[f"{self.prefix}:connections"],
                             args=[int(time.time() * 1000), self.limits.connections, self.holder, int(ttl_s * 1000)]):
                return True
            sleep(0.2)
        return False

    def release_connection(self) -> None:
        if self.limits.connections:
            self.redis.zrem(f"{self.prefix}:connections", self.holder)
