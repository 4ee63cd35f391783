"""What test processes left behind, read from ``/proc``: process trees, listening sockets, exits.

The teardown of :class:`~sf_sandbox.testing.LocalDockerd` and
:class:`~sf_sandbox.testing.LocalRayCluster` ends processes by PID with these, never by name.
"""

from __future__ import annotations

import os

from sf_sandbox._procfs import stat_fields

__all__ = ["descendants", "listeners", "signal_pid", "wait_gone"]


def descendants(pids: list[int]) -> list[int]:
    """``pids`` and every live process below them (by parent pid, read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = stat_fields(int(entry))
        try:
            ppid = int(fields[1]) if fields is not None else None
        except (ValueError, IndexError):
            continue
        if ppid is not None:
            children.setdefault(ppid, []).append(int(entry))
    seen: list[int] = []
    todo = [p for p in pids if os.path.exists(f"/proc/{p}")]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.append(pid)
        todo.extend(children.get(pid, []))
    return seen


def _socket_table() -> dict[int, tuple[str, str, int]]:
    """Socket inode → ``(proto, ip, port)`` of every TCP listener and bound UDP socket on this host."""
    import ipaddress

    tables: dict[int, tuple[str, str, int]] = {}
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        try:
            with open(f"/proc/net/{proto}") as fh:
                rows = fh.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            local, state, inode = cols[1], cols[3], int(cols[9])
            if proto.startswith("tcp") and state != "0A":  # LISTEN
                continue
            hexip, hexport = local.split(":")
            raw = bytes.fromhex(hexip)
            if len(raw) == 4:
                ip = ipaddress.IPv4Address(raw[::-1])
            else:  # four little-endian 32-bit words
                ip6 = ipaddress.IPv6Address(b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))
                ip = ip6.ipv4_mapped or ip6
            tables[inode] = (proto.rstrip("6"), str(ip), int(hexport, 16))
    return tables


def listeners(pids: list[int]) -> list[tuple[int, str, str, int]]:
    """Every TCP listening socket and bound UDP socket held by ``pids``: ``(pid, proto, ip, port)``.

    Read from ``/proc/<pid>/fd`` and ``/proc/net/{tcp,tcp6,udp,udp6}``; IPv4-mapped IPv6
    addresses are shown as IPv4.
    """
    tables = _socket_table()
    found: list[tuple[int, str, str, int]] = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in tables:
                    proto, ip, port = tables[inode]
                    found.append((pid, proto, ip, port))
    return sorted(set(found))


def wait_gone(pid: int, timeout: float) -> bool:
    """Whether ``pid`` is gone or a zombie, waiting up to ``timeout`` seconds (polled every 50 ms)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        fields = stat_fields(pid)
        if fields is None or fields[:1] == [b"Z"]:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def signal_pid(pid: int, sig: int) -> None:
    """Send ``sig`` to ``pid``; a process that is already gone is fine."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
