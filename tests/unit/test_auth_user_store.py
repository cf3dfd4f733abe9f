"""The user store: argon2id hashes, verification, rehash, roles, the last admin, revocation."""

import stat

import pytest
from argon2 import PasswordHasher

from gateway.services.accounts.users import (
    LastAdmin,
    Role,
    UserExists,
    UserNotFound,
    UserStore,
    WeakPassword,
)

# Cheap parameters keep the tests fast; production uses argon2-cffi's defaults.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct horse battery"


@pytest.fixture
async def store(tmp_path):
    async with UserStore(tmp_path / "users.sqlite", hasher=FAST) as s:
        yield s


async def test_a_fresh_store_has_no_users(store):
    assert await store.list() == []


async def test_default_credentials_of_the_seed_are_refused_on_a_fresh_store(store):
    assert await store.verify("admin", "admin123") is None


async def test_password_is_stored_as_an_argon2id_hash(store):
    user = await store.add("ana", PASSWORD, Role.OPERATOR)
    stored = await store.stored_hash(user.id)
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


async def test_right_password_verifies_to_the_user(store):
    added = await store.add("ana", PASSWORD, Role.OPERATOR, display_name="Ana Pérez")
    user = await store.verify("ana", PASSWORD)
    assert user == added
    assert (user.display_name, user.role) == ("Ana Pérez", Role.OPERATOR)


async def test_wrong_password_does_not_verify(store):
    await store.add("ana", PASSWORD, Role.OPERATOR)
    assert await store.verify("ana", PASSWORD + "!") is None


async def test_unknown_user_does_not_verify(store):
    assert await store.verify("nobody", PASSWORD) is None


async def test_disabled_user_does_not_verify(store):
    user = await store.add("ana", PASSWORD, Role.OPERATOR)
    await store.disable(user.id)
    assert await store.verify("ana", PASSWORD) is None


async def test_usernames_are_unique_regardless_of_case(store):
    await store.add("ana", PASSWORD, Role.OPERATOR)
    with pytest.raises(UserExists):
        await store.add("ANA", PASSWORD, Role.VIEWER)


@pytest.mark.parametrize("password", ["", "short", "123456789"])
async def test_passwords_under_ten_characters_are_refused(store, password):
    with pytest.raises(WeakPassword):
        await store.add("ana", password, Role.OPERATOR)


async def test_hash_made_with_other_parameters_is_replaced_at_login(tmp_path):
    path = tmp_path / "users.sqlite"
    async with UserStore(path, hasher=FAST) as old:
        user = await old.add("ana", PASSWORD, Role.OPERATOR)
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    async with UserStore(path, hasher=stronger) as new:
        assert await new.verify("ana", PASSWORD) is not None
        stored = await new.stored_hash(user.id)
    assert "m=2048,t=2,p=1" in stored
    assert not stronger.check_needs_rehash(stored)


async def test_set_password_replaces_the_old_one(store):
    user = await store.add("ana", PASSWORD, Role.OPERATOR)
    await store.set_password(user.id, "another long password")
    assert await store.verify("ana", PASSWORD) is None
    assert await store.verify("ana", "another long password") is not None


async def test_set_role_changes_the_role(store):
    user = await store.add("ana", PASSWORD, Role.OPERATOR)
    assert (await store.set_role(user.id, Role.SUPERVISOR)).role is Role.SUPERVISOR


async def test_deleted_user_is_gone(store):
    user = await store.add("ana", PASSWORD, Role.OPERATOR)
    await store.delete(user.id)
    with pytest.raises(UserNotFound):
        await store.get(user.id)


async def test_last_enabled_admin_cannot_be_disabled_demoted_or_deleted(store):
    admin = await store.add("root", PASSWORD, Role.ADMIN)
    for change in (store.disable(admin.id), store.set_role(admin.id, Role.VIEWER), store.delete(admin.id)):
        with pytest.raises(LastAdmin):
            await change
    assert (await store.get(admin.id)).role is Role.ADMIN


async def test_an_admin_can_be_removed_while_another_remains(store):
    first = await store.add("root", PASSWORD, Role.ADMIN)
    await store.add("root2", PASSWORD, Role.ADMIN)
    await store.delete(first.id)
    assert [u.name for u in await store.list()] == ["root2"]


async def test_active_user_is_none_for_a_revoked_token(store):
    user = await store.add("ana", PASSWORD, Role.OPERATOR)
    assert await store.active_user(user.id, "jti-1") == user
    await store.revoke("jti-1", expires_at=4_000_000_000)
    assert await store.active_user(user.id, "jti-1") is None


async def test_active_user_is_none_once_disabled(store):
    user = await store.add("ana", PASSWORD, Role.OPERATOR)
    await store.disable(user.id)
    assert await store.active_user(user.id, "jti-1") is None


async def test_revocations_are_forgotten_after_the_token_expired(tmp_path):
    clock = [1000.0]
    async with UserStore(tmp_path / "u.sqlite", hasher=FAST, clock=lambda: clock[0]) as store:
        await store.revoke("old", expires_at=1500.0)
        await store.revoke("live", expires_at=9000.0)
        clock[0] = 2000.0
        assert await store.prune_revoked() == 1
        assert await store.revoked_count() == 1


async def test_users_file_is_readable_by_its_owner_only(store):
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
