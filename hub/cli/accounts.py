"""``bhhub user`` (the workspace's users) and ``bhhub audit`` (the hash-chained audit trail)."""

from __future__ import annotations

import argparse
import os
import sys

from bhhub.cli.commands import open_hub
from bhhub.cli.output import clip, date_option, print_json, print_table
from bhhub.errors import UsageError

PASSWORD_ENV = "BHHUB_USER_PASSWORD"
ROLES = ("admin", "biller", "viewer")  # bhhub.accounts.ROLES, without importing it for --help


def add_commands(sub) -> None:
    p = sub.add_parser("user", help="the workspace's users (bhhub serve): add, list, disable, unlock, reset MFA",
                       description="People who may log in to the workspace. admin and biller see PHI and must pass "
                                   "a TOTP code after their password (enrolled at their first login, by QR code); "
                                   "viewer sees figures and ids only. Every change is audited.")
    user_sub = p.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    add = user_sub.add_parser("add", help="add a user with a role",
                              description=f"Add NAME with ROLE. The password (at least 12 characters) is read from "
                                          f"--password-file, else ${PASSWORD_ENV}, else asked twice on the terminal; "
                                          f"it is stored as an argon2 hash only.")
    add.add_argument("name", metavar="NAME", help="the login name: letters, digits, '.', '_', '@', '-'")
    add.add_argument("--role", required=True, choices=ROLES, help="admin, biller or viewer")
    add.add_argument("--password-file", metavar="FILE", help="a file whose first line is the password")
    add.add_argument("--json", action="store_true", help="the user added, as an object (as `user list` shows it)")
    add.set_defaults(func=cmd_user_add)
    listing = user_sub.add_parser("list", help="every user: role, second factor, locked, disabled")
    listing.add_argument("--json", action="store_true", help="JSON array, one object per user")
    listing.set_defaults(func=cmd_user_list)
    for action, text in (("disable", "stop NAME logging in (its sessions end)"),
                         ("enable", "let a disabled NAME log in again"),
                         ("unlock", "end NAME's lockout after failed logins now"),
                         ("reset-mfa", "forget NAME's second factor (a lost phone): the next login enrols again")):
        a = user_sub.add_parser(action, help=text)
        a.add_argument("name", metavar="NAME")
        a.add_argument("--json", action="store_true", help="the user afterwards, as an object (as `user list` shows it)")
        a.set_defaults(func=cmd_user_change, change=action)

    p = sub.add_parser("audit", help="the audit trail: check its hash chain, list its rows",
                       description="Every read or change of PHI, every action and every login is a row of the "
                                   "audit trail (who, when, what ids, from where, how it ended), each holding the "
                                   "hash of the row before it.")
    audit_sub = p.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    v = audit_sub.add_parser("verify", help="check the hash chain: exit 1 naming each edited or deleted row",
                             description="Recompute every row's hash and check every link. An edited row, or one "
                                         "deleted from the middle, is named and the exit code is 1. Rows deleted "
                                         "from the end leave a shorter chain that verifies: note the head hash this "
                                         "prints and compare it later.")
    v.add_argument("--json", action="store_true",
                   help='JSON object: {"ok", "checked", "head_id", "head_hash", "problems": [{"id", "reason"}]}')
    v.set_defaults(func=cmd_audit_verify)
    listing = audit_sub.add_parser("list", help="audit rows, newest first")
    listing.add_argument("--user", metavar="NAME", help="only this actor's rows (a user name, or cli:LOGIN)")
    listing.add_argument("--since", metavar="YYYY-MM-DD", help="only rows from this day on (UTC)")
    listing.add_argument("--limit", type=int, metavar="N", help="at most N rows")
    listing.add_argument("--json", action="store_true", help="JSON array, one object per row")
    listing.set_defaults(func=cmd_audit_list)


def _password(args: argparse.Namespace) -> str:
    if args.password_file:
        try:
            with open(args.password_file, encoding="utf-8") as file:
                return file.readline().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read --password-file {args.password_file}: {exc.__class__.__name__}") from None
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if not sys.stdin.isatty():
        raise UsageError(f"no password given: use --password-file FILE or ${PASSWORD_ENV}, or run on a terminal to "
                         f"be asked")
    import getpass

    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise UsageError("the two passwords differ; nothing was changed")
    return first


def cmd_user_add(args: argparse.Namespace) -> int:
    from bhhub import accounts

    password = _password(args)
    accounts.users.check_new_password(password)  # before the hub is opened: a short one is told at once
    with open_hub(args) as hub:
        user_id = accounts.add_user(hub, args.name, args.role, password)
        if args.json:
            print_json(_user_json(hub, args.name))
            return 0
    needs = " (a TOTP second factor is enrolled at the first login)" if args.role in accounts.MFA_ROLES else ""
    print(f"user {args.name} added as {args.role}, id {user_id}{needs}")
    return 0


def _user_json(hub, name: str) -> dict:
    from bhhub import accounts

    return next(u for u in accounts.list_users(hub) if u["name"] == name)


def cmd_user_list(args: argparse.Namespace) -> int:
    from bhhub import accounts

    with open_hub(args) as hub:
        users = accounts.list_users(hub)
    if args.json:
        print_json(users)
    elif not users:
        print("no users: add one with `bhhub user add NAME --role admin`")
    else:
        print_table(["NAME", "ROLE", "MFA", "STATE", "CREATED"],
                    [(u["name"], u["role"], "enrolled" if u["mfa_enrolled"] else "-",
                      "disabled" if u["disabled"] else f"locked until {u['locked_until']}" if u["locked"] else "active",
                      u["created_at"][:16].replace("T", " ")) for u in users])
    return 0


def cmd_user_change(args: argparse.Namespace) -> int:
    from bhhub import accounts

    with open_hub(args) as hub:
        if args.change in ("disable", "enable"):
            accounts.set_disabled(hub, args.name, args.change == "disable")
        elif args.change == "unlock":
            accounts.unlock(hub, args.name)
        else:
            accounts.reset_totp(hub, args.name)
        if args.json:
            print_json(_user_json(hub, args.name))
            return 0
    done = {"disable": "disabled (its sessions ended)", "enable": "enabled", "unlock": "unlocked",
            "reset-mfa": "has no second factor now: the next login enrols one (its sessions ended)"}
    print(f"user {args.name} {done[args.change]}")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from bhhub.audit import chain

    with open_hub(args) as hub, hub.store.session() as session:
        found = chain.verify(session)
    if args.json:
        print_json(found.to_json())
    elif found.ok:
        head = f"; head row {found.head_id}, hash {found.head_hash}" if found.head_id is not None else ""
        print(f"audit trail intact: {found.checked} rows{head}")
    else:
        print(f"audit trail BROKEN: {len(found.problems)} problem(s) in {found.checked} rows")
        for row_id, reason in found.problems:
            print(f"  row {row_id}: {reason}")
    return 0 if found.ok else 1


def cmd_audit_list(args: argparse.Namespace) -> int:
    from bhhub.audit import chain

    since = date_option(args.since, "--since")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be 1 or more, not {args.limit}")
    with open_hub(args) as hub, hub.store.session() as session:
        rows = chain.events(session, user=args.user, since=since, limit=args.limit)
    if args.json:
        print_json(rows)
    elif not rows:
        print("no audit rows" + (" match" if args.user or since else ""))
    else:
        print_table(["ID", "AT", "ACTOR", "SOURCE", "ACTION", "OUTCOME", "OBJECT", "IDS", "DETAIL"],
                    [(r["id"], r["at"][:19].replace("T", " "), r["actor"], r["source"], r["action"], r["outcome"],
                      r["object_type"], clip(" ".join(map(str, r["object_ids"])), 30), clip(r["detail"] or "", 40))
                     for r in rows])
    return 0
