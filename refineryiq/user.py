"""`refineryiq user ...`: manage the accounts of the HTTP API in the state directory.

Passwords are never command-line arguments (they would show in `ps` and in shell history):
they are asked for twice on a terminal, or read as one line from standard input otherwise
(``printf '%s\\n' "$PW" | refineryiq user add ana --role operator``).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from gateway.runtime.exit_codes import EXIT_ERROR, EXIT_OK, report_config_error
from gateway.services.accounts.users import USERS_FILE, Role, User, UserError, UserStore, check_password
from gateway.settings import DEFAULT_CONFIG, load_config
from plant.errors import ConfigError


class PasswordError(Exception):
    """The password could not be read or is not acceptable."""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help="gateway.toml whose state directory holds the users (default: %(default)s)")
    parser = argparse.ArgumentParser(prog="refineryiq user", parents=[common],
                                     description="Manage HTTP API users (state_dir/users.sqlite).")
    sub = parser.add_subparsers(dest="action", required=True)
    roles = [r.label for r in Role]

    add = sub.add_parser("add", parents=[common], help="create a user (password from prompt or stdin)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=roles)
    add.add_argument("--display-name", help="name shown in the dashboard (default: NAME)")

    sub.add_parser("list", parents=[common], help="list users")

    passwd = sub.add_parser("passwd", parents=[common], help="set a user's password")
    passwd.add_argument("name")

    set_role = sub.add_parser("set-role", parents=[common], help="change a user's role")
    set_role.add_argument("name")
    set_role.add_argument("role", choices=roles)

    for action, text in (("disable", "refuse a user's logins and tokens"),
                         ("enable", "allow a disabled user again"), ("delete", "delete a user")):
        p = sub.add_parser(action, parents=[common], help=text)
        p.add_argument("name")
    return parser


def read_password(confirm: bool, stdin: TextIO | None = None) -> str:
    """A new password: prompted (twice) on a terminal, else the first line of stdin."""
    stdin = stdin or sys.stdin
    if stdin.isatty():
        password = getpass.getpass("Password: ")
        if confirm and getpass.getpass("Repeat password: ") != password:
            raise PasswordError("the passwords do not match")
    else:
        line = stdin.readline()
        if not line:
            raise PasswordError("no password on standard input")
        password = line.rstrip("\r\n")
    try:
        return check_password(password)
    except UserError as exc:
        raise PasswordError(str(exc)) from None


def _row(user: User) -> str:
    created = datetime.fromtimestamp(user.created_at, UTC).strftime("%Y-%m-%d %H:%M")
    state = "disabled" if user.disabled else "enabled"
    return f"{user.id:>4}  {user.name:<20} {user.role.label:<10} {state:<8} {created}  {user.display_name}"


async def _run(args: argparse.Namespace, store_path: Path, password: str | None) -> str:
    async with UserStore(store_path) as store:
        if args.action == "add":
            user = await store.add(args.name, password, Role.parse(args.role), args.display_name)
            return f"added user '{user.name}' (id {user.id}, role {user.role.label})"
        if args.action == "list":
            users = await store.list()
            header = f"{'id':>4}  {'username':<20} {'role':<10} {'state':<8} {'created (UTC)':<16}  display name"
            return "\n".join([header, *(_row(u) for u in users)]) if users else "no users"
        user = await store.find(args.name)
        if args.action == "passwd":
            await store.set_password(user.id, password)
            return f"password of '{user.name}' changed"
        if args.action == "set-role":
            user = await store.set_role(user.id, Role.parse(args.role))
            return f"'{user.name}' is now {user.role.label}"
        if args.action in ("disable", "enable"):
            user = await store.update(user.id, disabled=args.action == "disable")
            return f"'{user.name}' is {'disabled' if user.disabled else 'enabled'}"
        if args.action == "delete":
            await store.delete(user.id)
            return f"deleted user '{user.name}'"
    raise AssertionError(f"unhandled action {args.action}")


def main(argv: list[str]) -> int:
    """Run `refineryiq user ARGV...`; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
        password = read_password(confirm=True) if args.action in ("add", "passwd") else None
        print(asyncio.run(_run(args, config.settings.state_dir / USERS_FILE, password)))
    except ConfigError as exc:
        return report_config_error(exc)
    except (PasswordError, UserError) as exc:
        print(f"refineryiq user: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (KeyboardInterrupt, EOFError):
        print(file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
