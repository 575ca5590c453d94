"""The SFTP transport: how the hub reaches a clearinghouse mailbox (paramiko).

Registered as the ``sftp`` transport (the default of every mailbox). A mailbox's connection
settings are checked by ``SftpSettings.from_mapping``: pinned host keys, secrets by reference.
"""

from __future__ import annotations

from bhhub import hookimpl
from bhhub.types import Transport


def _configure(table: dict, where: str):
    from bhhub.connectors.sftp.settings import SftpSettings

    return SftpSettings.from_mapping(table, where=where)


def _connect(settings):
    from bhhub.connectors.sftp.client import SftpClient

    return SftpClient(settings)


def _test(settings, directories):
    from bhhub.connectors.sftp.client import test_connection

    return test_connection(settings, directories)


@hookimpl
def bhhub_register_transports() -> list[Transport]:
    return [Transport(
        name="sftp",
        description="SFTP (paramiko): pinned host key, password or key from the environment or a file",
        configure=_configure,
        connect=_connect,
        test=_test,
    )]
