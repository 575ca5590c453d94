"""``bhhub serve``: the practice workspace in a browser (``bhhub.web``), served by uvicorn."""

from __future__ import annotations

import argparse

from bhhub.errors import UsageError


def add_commands(sub) -> None:
    p = sub.add_parser(
        "serve", help="open the practice workspace in a browser: overview, claims, work to do, ...",
        description="Serve the workspace over this hub's store: the overview (pipeline, A/R, rates), claims, "
                    "the denial worklist with its actions, authorizations, inbox and mailboxes, eligibility, "
                    "and a JSON API under /api/. Users are made with `bhhub user add`; admins and billers "
                    "sign in with a one-time code too. Defaults come from [workspace] in bhhub.toml. On a "
                    "network, put a TLS proxy in front: the session cookie is Secure except on this machine.")
    p.add_argument("--host", metavar="ADDRESS", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, metavar="PORT", help="port to listen on (default 8080)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from bhhub.cli.commands import open_hub

    with open_hub(args) as hub:
        return serve(hub, host=args.host, port=args.port)


def serve(hub, *, host: str | None = None, port: int | None = None, users_hint: bool = True) -> int:
    """Serve ``hub`` until interrupted."""
    import uvicorn

    from bhhub.accounts import list_users
    from bhhub.configuration.hub_file import Workspace
    from bhhub.web.app import create_app

    settings = hub.settings.section(Workspace)
    host = host or settings.host
    port = settings.port if port is None else port
    if not 0 < port < 65536:
        raise UsageError(f"--port must be 1-65535, not {port}")
    _check_free(host, port)
    if users_hint and not list_users(hub):
        print("no users yet: add one with `bhhub user add NAME --role admin` to sign in")
    config = uvicorn.Config(create_app(hub), host=host, port=port, log_config=None, access_log=False,
                            server_header=False, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    print(f"bhhub workspace on http://{_shown(host)}:{port}/ (Ctrl-C stops it)", flush=True)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits when it cannot bind (another program took the port since)
        raise UsageError(f"cannot listen on {host}:{port} (taken by another program?)") from exc
    return 0


def _check_free(host: str, port: int) -> None:
    """A clear line, before anything starts, when the address cannot be listened on."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def _shown(host: str) -> str:
    return f"[{host}]" if ":" in host else host
