"""The ``[mailboxes.NAME]`` table of a hub whose clearinghouse is bhhub's sandbox on 127.0.0.1:
one writing of it for every test that exchanges with a sandbox."""

from __future__ import annotations


def sandbox_host_key(sandbox) -> str:
    """The sandbox's host key as a known_hosts entry without host or port ("ssh-ed25519 AAAA..."):
    pinned whatever port reaches it (its own, or a fault-injecting proxy's)."""
    return " ".join(sandbox.known_hosts_line.split()[1:3])


def sandbox_mailbox(sandbox, name: str = "sandbox", *, port: int | None = None, timeout: float = 5,
                    operation_timeout: float | None = None) -> str:
    """bhhub.toml text of a mailbox reaching ``sandbox`` (a started ``SandboxClearinghouse``),
    through ``port`` when given (a proxy in front of it)."""
    return f"""
[mailboxes.{name}]
profile = "sandbox"
host = "{sandbox.host}"
port = {sandbox.port if port is None else port}
username = "{sandbox.username}"
password_file = "{sandbox.password_path}"
known_hosts = ["{sandbox_host_key(sandbox)}"]
connect_timeout = {timeout}
operation_timeout = {timeout if operation_timeout is None else operation_timeout}
"""
