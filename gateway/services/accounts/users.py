"""Users of the HTTP API and their roles, in their own SQLite file (``<state_dir>/users.sqlite``).

Passwords are stored as argon2id hashes only. Hashing costs tens of milliseconds of CPU and
64 MiB of memory by design, so it runs on a small private thread pool (two workers: the memory
and CPU a burst of logins can take stay bounded) and never on the event loop. There is no
default user: the first admin is created with ``refineryiq user add NAME --role admin``.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.store.sqlite_thread import SqliteThread

T = TypeVar("T")

USERS_FILE = "users.sqlite"
MIN_PASSWORD_LENGTH = 10
# argon2 hashes whatever it is given; a cap keeps a megabyte "password" from being a cheap DoS.
MAX_PASSWORD_LENGTH = 1024
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
HASH_WORKERS = 2

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS users (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        display_name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'supervisor', 'admin')),
        password_hash TEXT NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
        created_at REAL NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
    )""",
    """CREATE TABLE IF NOT EXISTS revoked_tokens (
        jti TEXT PRIMARY KEY,
        expires_at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS revoked_tokens_expiry ON revoked_tokens (expires_at)",
]


class Role(IntEnum):
    """What a user may do; each role includes the rights of the roles below it."""

    VIEWER = 1
    OPERATOR = 2  # acknowledge and shelve alarms
    SUPERVISOR = 3  # inventory and plant data writes
    ADMIN = 4  # users

    @property
    def label(self) -> str:
        """The role's name as the API and the CLI spell it ("operator")."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        """The role named ``text`` (case-insensitive); ValueError listing the choices."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            choices = ", ".join(r.label for r in cls)
            raise ValueError(f"unknown role '{text}' (choose one of: {choices})") from None

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True)
class User:
    """A user as the rest of the gateway sees it (never with the password hash)."""

    id: int
    name: str
    display_name: str
    role: Role
    disabled: bool = False
    created_at: float = 0.0

    def public(self) -> dict:
        """The JSON shape of a user in API answers."""
        return {"id": self.id, "username": self.name, "display_name": self.display_name,
                "role": self.role.label, "disabled": self.disabled, "created_at": self.created_at}


class UserError(Exception):
    """A user operation the store refuses; the message is fit to show the caller."""


class UserExists(UserError):
    pass


class UserNotFound(UserError):
    pass


class WeakPassword(UserError):
    pass


class LastAdmin(UserError):
    """Removing, disabling or demoting the last enabled admin would lock everyone out."""


def check_username(name: str) -> str:
    """``name`` if it is a valid username (letters, digits, ``_.@-``, at most 64)."""
    if not USERNAME_PATTERN.match(name):
        raise UserError("username must be 1-64 letters, digits or _.@- and start with a letter or digit")
    return name


def check_password(password: str) -> str:
    """``password`` if it is long enough to be worth hashing."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"password must be at most {MAX_PASSWORD_LENGTH} characters")
    return password


_COLUMNS = "id, username, display_name, role, disabled, created_at"


def _user(row: tuple) -> User:
    return User(id=row[0], name=row[1], display_name=row[2], role=Role.parse(row[3]),
                disabled=bool(row[4]), created_at=row[5])


class UserStore:
    """Users and revoked tokens. ``hasher`` defaults to argon2-cffi's recommended parameters;
    a hash made with other parameters is replaced at the user's next successful login."""

    def __init__(self, path: Path, hasher: PasswordHasher | None = None,
                 clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.hasher = hasher or PasswordHasher()
        self._clock = clock
        self._db = SqliteThread(self.path, schema=SCHEMA, durable=True, name="users")
        self._pool: ThreadPoolExecutor | None = None
        self._dummy_hash = ""

    async def open(self) -> None:
        self._pool = ThreadPoolExecutor(HASH_WORKERS, thread_name_prefix="argon2")
        await asyncio.to_thread(_create_private, self.path)
        await self._db.open()
        await self.prune_revoked()

    async def close(self) -> None:
        await self._db.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def __aenter__(self) -> UserStore:
        await self.open()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # ------------------------------------------------------------------ hashing (off the loop)

    async def _off_loop(self, fn: Callable[..., T], *args) -> T:
        if self._pool is None:
            raise RuntimeError(f"user store {self.path} is not open")
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _hash(self, password: str) -> str:
        return await self._off_loop(self.hasher.hash, password)

    async def _matches(self, password_hash: str, password: str) -> bool:
        def check() -> bool:
            try:
                return self.hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False
        return await self._off_loop(check)

    # ------------------------------------------------------------------ users

    async def add(self, username: str, password: str, role: Role,
                  display_name: str | None = None) -> User:
        """Create a user; UserExists if the name is taken (names compare case-insensitively)."""
        check_username(username)
        password_hash = await self._hash(check_password(password))
        now = self._clock()

        def insert(conn: sqlite3.Connection) -> int:
            try:
                cur = conn.execute(
                    "INSERT INTO users (username, display_name, role, password_hash, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (username, display_name or username, Role(role).label, password_hash, now))
            except sqlite3.IntegrityError:
                raise UserExists(f"user '{username}' already exists") from None
            return cur.lastrowid
        user_id = await self._db.transaction(insert)
        return await self.get(user_id)

    async def get(self, user_id: int) -> User:
        """The user with this id; UserNotFound otherwise."""
        row = await self._db.call(lambda c: c.execute(
            f"SELECT {_COLUMNS} FROM users WHERE id = ?", (user_id,)).fetchone())
        if row is None:
            raise UserNotFound(f"no user with id {user_id}")
        return _user(row)

    async def find(self, username: str) -> User:
        """The user with this name (case-insensitive); UserNotFound otherwise."""
        row = await self._db.call(lambda c: c.execute(
            f"SELECT {_COLUMNS} FROM users WHERE username = ?", (username,)).fetchone())
        if row is None:
            raise UserNotFound(f"no user named '{username}'")
        return _user(row)

    async def list(self) -> list[User]:
        """Every user, in creation order."""
        rows = await self._db.call(lambda c: c.execute(
            f"SELECT {_COLUMNS} FROM users ORDER BY id").fetchall())
        return [_user(r) for r in rows]

    async def set_password(self, user_id: int, password: str) -> None:
        password_hash = await self._hash(check_password(password))
        await self._update(user_id, "password_hash = ?", (password_hash,))

    async def set_role(self, user_id: int, role: Role) -> User:
        return await self.update(user_id, role=role)

    async def disable(self, user_id: int) -> User:
        return await self.update(user_id, disabled=True)

    async def update(self, user_id: int, *, role: Role | None = None, disabled: bool | None = None,
                     display_name: str | None = None) -> User:
        """Change what is given; LastAdmin if no enabled admin would remain."""
        sets, params = [], []
        if role is not None:
            sets.append("role = ?")
            params.append(Role(role).label)
        if disabled is not None:
            sets.append("disabled = ?")
            params.append(int(disabled))
        if display_name is not None:
            sets.append("display_name = ?")
            params.append(display_name)
        if sets:
            await self._update(user_id, ", ".join(sets), tuple(params))
        return await self.get(user_id)

    async def delete(self, user_id: int) -> None:
        def remove(conn: sqlite3.Connection) -> None:
            admins = _enabled_admins(conn)
            if conn.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount == 0:
                raise UserNotFound(f"no user with id {user_id}")
            _admins_remain(conn, admins)
        await self._db.transaction(remove)

    async def _update(self, user_id: int, assignments: str, params: tuple) -> None:
        def update(conn: sqlite3.Connection) -> None:
            admins = _enabled_admins(conn)
            cur = conn.execute(f"UPDATE users SET {assignments} WHERE id = ?", (*params, user_id))
            if cur.rowcount == 0:
                raise UserNotFound(f"no user with id {user_id}")
            _admins_remain(conn, admins)
        await self._db.transaction(update)

    # ------------------------------------------------------------------ authentication

    async def verify(self, username: str, password: str) -> User | None:
        """The enabled user these credentials belong to, or None. Takes as long for an unknown
        or disabled user as for a wrong password. Rehashes a matching password whose hash was
        made with other parameters than the store's hasher."""
        row = await self._db.call(lambda c: c.execute(
            f"SELECT {_COLUMNS}, password_hash FROM users WHERE username = ?",
            (username,)).fetchone())
        if row is None:
            # Checking against a hash made with the same parameters costs what a real check
            # costs, so the answer time does not tell which usernames exist.
            if not self._dummy_hash:
                self._dummy_hash = await self._hash("not the password of anyone")
            await self._matches(self._dummy_hash, password)
            return None
        user, password_hash = _user(row[:-1]), row[-1]
        if not await self._matches(password_hash, password) or user.disabled:
            return None
        if self.hasher.check_needs_rehash(password_hash):
            new_hash = await self._hash(password)
            await self._db.transaction(lambda c: c.execute(
                "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?",
                (new_hash, user.id, password_hash)))
        return user

    async def active_user(self, user_id: int, jti: str) -> User | None:
        """The enabled user a token names, or None when the user is gone or disabled or the
        token was revoked. Read on every authenticated request, so that disabling a user or
        changing a role takes effect at once, also when done from the CLI."""
        def read(conn: sqlite3.Connection) -> tuple | None:
            revoked = conn.execute("SELECT 1 FROM revoked_tokens WHERE jti = ?", (jti,)).fetchone()
            if revoked is not None:
                return None
            return conn.execute(f"SELECT {_COLUMNS} FROM users WHERE id = ? AND disabled = 0",
                                (user_id,)).fetchone()
        row = await self._db.call(read)
        return None if row is None else _user(row)

    async def revoke(self, jti: str, expires_at: float) -> None:
        """Refuse this token from now on; forgotten once it would have expired anyway."""
        now = self._clock()

        def revoke(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR IGNORE INTO revoked_tokens (jti, expires_at) VALUES (?, ?)",
                         (jti, expires_at))
            conn.execute("DELETE FROM revoked_tokens WHERE expires_at < ?", (now,))
        await self._db.transaction(revoke)

    async def prune_revoked(self) -> int:
        """Forget revocations of tokens that have expired; returns how many."""
        now = self._clock()
        return await self._db.transaction(lambda c: c.execute(
            "DELETE FROM revoked_tokens WHERE expires_at < ?", (now,)).rowcount)

    async def revoked_count(self) -> int:
        return await self._db.call(lambda c: c.execute(
            "SELECT count(*) FROM revoked_tokens").fetchone()[0])

    async def stored_hash(self, user_id: int) -> str:
        """The stored password hash (for tests and audits of the hash format)."""
        row = await self._db.call(lambda c: c.execute(
            "SELECT password_hash FROM users WHERE id = ?", (user_id,)).fetchone())
        if row is None:
            raise UserNotFound(f"no user with id {user_id}")
        return row[0]


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only (it holds password hashes); SQLite
    gives its -wal and -shm files the same mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _enabled_admins(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0").fetchone()[0]


def _admins_remain(conn: sqlite3.Connection, before: int) -> None:
    """Inside a change (rolled back if this raises): refuse to take away the last enabled admin."""
    if before > 0 and _enabled_admins(conn) == 0:
        raise LastAdmin("this would leave no enabled admin; add or enable another admin first")
