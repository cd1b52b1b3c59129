"""Workers on two hosts against one Redis and one PostgreSQL: the deployment the README describes.

Each "host" is a network namespace (`ip netns`) joined to the machine by a veth pair on a bridge:
the hosts are 10.77.N.2 and 10.77.N.3, the machine 10.77.N.1, where the shared parts listen: a
Redis server of the test's own, the scripted relay, and a TCP relay to PostgreSQL (which listens on
127.0.0.1 only, out of a namespace's reach). Real `python worker.py` processes run in each
namespace (`ip netns exec`), configured with those addresses only. One campaign of 10,000 goes to
every member exactly once with both hosts sending; then one host dies (SIGKILL of every process in
its namespace) mid-send and the other finishes by itself, sending twice no more than the messages
that were on the dead host's connections.

Namespaces need root (CI runs as root). Where they cannot be made the cases skip, saying why;
MAILER_TEST_REQUIRE_NETNS=1 (set in CI) turns that skip into a failure. Everything made here
(namespaces, their veths, the bridge, every process) is removed afterwards, on failure too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from sqlalchemy.engine import make_url

from tests.faults.conftest import FaultRelay, OwnRedis, _Controller, _Handler
from tests.conftest import free_port
from tests.test_worker import WORKER_PY

pytestmark = pytest.mark.slow

RECIPIENTS = int(os.environ.get("MAILER_TEST_TWO_HOSTS_RECIPIENTS", "10000"))
WORKERS_PER_HOST = 2


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def _why_no_netns() -> str | None:
    """None when network namespaces can be made here, else why not."""
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed"
    if os.geteuid() != 0:
        return "making network namespaces needs root (CI runs as root)"
    probe = f"mailer-probe-{os.getpid()}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


class TcpRelay:
    """A plain TCP forwarder in the machine's namespace: listen_host:port -> target. PostgreSQL
    listens on 127.0.0.1 only; the hosts reach it through this, as through a network."""

    def __init__(self, listen_host: str, target_host: str, target_port: int):
        self.listen_host, self.target = listen_host, (target_host, target_port)
        self.port, self.server = 0, None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="tcp-relay", daemon=True)

    def start(self) -> None:
        self.thread.start()
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._client, self.listen_host, 0), self.loop).result(10)
        self.server = server
        self.port = server.sockets[0].getsockname()[1]

    async def _client(self, reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    @staticmethod
    async def _pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        if not self.thread.is_alive():
            return

        async def close():
            if self.server is not None:
                self.server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Hosts:
    """Two network namespaces on a bridge: `addresses[name]` is each host's address, `gateway`
    the machine's side, where the shared parts listen."""

    def __init__(self):
        tag = os.getpid() % 100_000
        self.bridge = f"mlr{tag}br"
        self.names = [f"mailer-{tag}-a", f"mailer-{tag}-b"]
        net = self._free_subnet()
        self.gateway = str(net[1])
        self.addresses = {name: str(net[2 + i]) for i, name in enumerate(self.names)}
        self.prefix = net.prefixlen

    @staticmethod
    def _free_subnet() -> ipaddress.IPv4Network:
        """10.77.N.0/24 with N not in use on this machine (another run may hold one)."""
        used = _ip("-4", "-o", "addr").stdout
        for n in [os.getpid() % 200 + 1, *range(1, 255)]:
            if f" 10.77.{n}." not in used:
                return ipaddress.IPv4Network(f"10.77.{n}.0/24")
        raise RuntimeError("no free 10.77.N.0/24 subnet")

    def make(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/{self.prefix}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i, name in enumerate(self.names):
            veth = f"{self.bridge[:-2]}{'ab'[i]}"
            _ip("netns", "add", name)
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
            _ip("link", "set", veth, "master", self.bridge)
            _ip("link", "set", veth, "up")
            _ip("-n", name, "addr", "add", f"{self.addresses[name]}/{self.prefix}", "dev", "eth0")
            _ip("-n", name, "link", "set", "eth0", "up")
            _ip("-n", name, "link", "set", "lo", "up")

    def pids(self, name: str) -> list[int]:
        found = _ip("netns", "pids", name, check=False).stdout
        return [int(p) for p in found.split()]

    def kill_all(self, name: str) -> int:
        """SIGKILL every process in the namespace (the host dies); returns how many there were."""
        killed = 0
        for _ in range(20):  # a work-horse forked meanwhile is caught by the next round
            pids = self.pids(name)
            if not pids:
                return killed
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        raise RuntimeError(f"processes survive in {name}: {self.pids(name)}")

    def remove(self) -> None:
        for name in self.names:
            try:
                self.kill_all(name)
            finally:
                _ip("netns", "del", name, check=False)  # its end of the veth goes with it, and so the pair
        _ip("link", "del", self.bridge, check=False)


@pytest.fixture(scope="module")
def hosts():
    why = _why_no_netns()
    if why is not None:
        if os.environ.get("MAILER_TEST_REQUIRE_NETNS") == "1":
            pytest.fail(f"MAILER_TEST_REQUIRE_NETNS=1 but network namespaces cannot be made: {why}")
        pytest.skip(f"workers on two hosts need network namespaces: {why}")
    made = Hosts()
    try:
        made.make()
        yield made
    finally:
        made.remove()
    leftovers = [n for n in made.names if n in _ip("netns", "list").stdout] + \
        ([made.bridge] if _ip("link", "show", made.bridge, check=False).returncode == 0 else [])
    assert not leftovers, f"not removed: {leftovers}"


class _PeerCounting(_Handler):
    async def handle_DATA(self, server, session, envelope):
        answer = await super().handle_DATA(server, session, envelope)
        if answer.startswith("250"):
            with self.relay.lock:
                self.relay.by_host[session.peer[0]] += len(envelope.rcpt_tos)
        return answer


@pytest.fixture
def relay(hosts):
    """The scripted relay, on the machine's side of the bridge, counting messages by host too."""
    relay = FaultRelay()
    relay.by_host = Counter()
    controller = _Controller(_PeerCounting(relay), hostname=hosts.gateway, port=free_port())
    controller.start()
    relay.port = controller.port
    relay.connections = 0
    yield relay
    controller.stop()


@pytest.fixture
def shared(hosts, case, tmp_path):
    """One Redis and one PostgreSQL for both hosts, reached at the machine's side of the bridge."""
    redis_server = OwnRedis(tmp_path / "redis", host=hosts.gateway, password="shared-by-both-hosts")
    db = make_url(case.app.config["DATABASE_URL"])
    pg = TcpRelay(hosts.gateway, db.host or "127.0.0.1", db.port or 5432)
    try:
        redis_server.start()
        pg.start()
        case.use_redis(redis_server.url)
        case.env_extra.update(MAILER_DATABASE_URL=db.set(host=hosts.gateway, port=pg.port)
                              .render_as_string(hide_password=False),
                              MAIL_SERVER=hosts.gateway, MAILER_BATCH_SIZE="500", MAILER_SEND_CHUNK="100")
        yield
    finally:
        for name in hosts.names:
            hosts.kill_all(name)
        pg.stop()
        redis_server.stop()


def start_on(hosts, case, name: str) -> subprocess.Popen:
    """`python worker.py` on one host: run in its namespace, with the shared parts' addresses."""
    log = case.tmp_path / f"{name}-worker{len(case.logs)}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, str(WORKER_PY)], env=case.env(),
                                cwd=case.tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    case.logs.append(log)
    return proc


def _by_host(hosts, relay) -> dict:
    return {name: relay.by_host[address] for name, address in hosts.addresses.items()}


def test_two_hosts_send_ten_thousand_exactly_once(hosts, case, shared):
    case.members(RECIPIENTS)
    for name in hosts.names:
        for _ in range(WORKERS_PER_HOST):
            start_on(hosts, case, name)
    case.send(case.make_campaign)
    result = case.finish(timeout=300, allowed_twice=0)
    by_host = _by_host(hosts, case.relay)
    print("delivered by host:", by_host)
    assert result["once"] == RECIPIENTS
    assert all(n > 0 for n in by_host.values()), f"one host sent nothing: {by_host}"
    assert sum(by_host.values()) == case.relay.total  # nothing came from anywhere but the two hosts


def test_one_host_killed_mid_send_the_other_finishes(hosts, case, shared):
    case.members(RECIPIENTS)
    survivors = []
    for name in hosts.names:
        for _ in range(WORKERS_PER_HOST):
            proc = start_on(hosts, case, name)
            if name == hosts.names[1]:
                survivors.append(proc)
    case.send(case.make_campaign)
    case.wait_delivered(RECIPIENTS // 3, timeout=180)
    dead, alive = hosts.names
    killed = hosts.kill_all(dead)
    before = _by_host(hosts, case.relay)
    # Twice at most the messages on the dead host's connections: one per worker.
    result = case.finish(timeout=300, allowed_twice=WORKERS_PER_HOST)
    after = _by_host(hosts, case.relay)
    print(f"killed {killed} processes on {dead}; delivered by host at the kill: {before}, at the end: {after}")
    assert before[dead] > 0 and after[dead] <= before[dead] + WORKERS_PER_HOST, (before, after)  # nothing after death
    assert after[alive] > before[alive]
    assert all(p.poll() is None for p in survivors), "a worker on the surviving host exited"
