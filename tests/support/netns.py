"""A second host for tests: a network namespace joined to this one by a veth pair.

Its link can be cut and mended: a blackhole route inside the namespace drops everything it
sends to this host, so open connections stall (what they send waits and is delivered once
the link is back) and new ones fail. The host's own routes are never touched, so no packet
meant for the namespace can leave the machine.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from tests.services import unavailable


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class IsolatedHost:
    """A namespace ``name`` at ``guest_ip``, reaching this host at ``host_ip``."""

    def __init__(self, tag: int) -> None:
        self.name = f"jqtest{tag}"
        self._host_link, self._guest_link = f"jqh{tag}", f"jqg{tag}"
        self.host_ip = f"10.213.{tag}.1"
        self.guest_ip = f"10.213.{tag}.2"

    def create(self) -> None:
        """Make the namespace and the veth pair, with an address at each end."""
        _ip("netns", "add", self.name)
        _ip("link", "add", self._host_link, "type", "veth", "peer", "name", self._guest_link)
        _ip("link", "set", self._guest_link, "netns", self.name)
        _ip("addr", "add", f"{self.host_ip}/24", "dev", self._host_link)
        _ip("link", "set", self._host_link, "up")
        _ip("-n", self.name, "addr", "add", f"{self.guest_ip}/24", "dev", self._guest_link)
        _ip("-n", self.name, "link", "set", self._guest_link, "up")
        _ip("-n", self.name, "link", "set", "lo", "up")

    def destroy(self) -> None:
        """Remove the pair and the namespace (processes still inside keep theirs until exit)."""
        subprocess.run(["ip", "link", "del", self._host_link], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], check=False, capture_output=True)

    def cut(self) -> None:
        """Drop everything the namespace sends to this host."""
        _ip("-n", self.name, "route", "add", "blackhole", f"{self.host_ip}/32")

    def mend(self) -> None:
        """Let it through again."""
        _ip("-n", self.name, "route", "del", "blackhole", f"{self.host_ip}/32")

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the namespace (``ip netns exec`` execs it: same process)."""
        return ["ip", "netns", "exec", self.name, *argv]


@contextmanager
def isolated_host() -> Iterator[IsolatedHost]:
    """A namespace for one test (needs root and iproute2), removed afterwards."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        unavailable("network namespaces need root and iproute2 (apt-get install iproute2)")
    host = IsolatedHost(random.randrange(1, 250))
    host.destroy()  # what a killed run may have left under the same name
    try:
        host.create()
    except subprocess.CalledProcessError as exc:
        host.destroy()
        unavailable(f"cannot make a network namespace: {exc.stderr.decode().strip()}")
    try:
        yield host
    finally:
        host.destroy()
