"""Tokens: HS256 signed, expiring, tamper-evident; roles ordered; the signing key's file."""

import base64
import json
import stat

import jwt
import pytest

from gateway.services.accounts.service import reads_need_token
from gateway.services.accounts.tokens import KEY_FILE, TokenError, TokenSigner, load_signing_key
from gateway.services.accounts.users import Role, User
from gateway.settings import AuthSettings, GatewaySettings

KEY = b"k" * 32
ANA = User(id=7, name="ana", display_name="Ana", role=Role.OPERATOR)
LIFETIME = 8 * 3600


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def signer(clock: Clock | None = None, key: bytes = KEY) -> TokenSigner:
    return TokenSigner(key, LIFETIME, clock=clock or Clock())


def test_issued_token_verifies_to_its_user_and_role():
    token, issued = signer().issue(ANA)
    claims = signer().verify(token)
    assert (claims.user_id, claims.role, claims.jti) == (ANA.id, Role.OPERATOR, issued.jti)


def test_token_carries_sub_role_iat_exp_jti():
    token, _ = signer().issue(ANA)
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["sub"] == "7" and payload["role"] == "operator"
    assert payload["exp"] - payload["iat"] == LIFETIME
    assert payload["jti"]


def test_each_token_has_its_own_jti():
    assert signer().issue(ANA)[1].jti != signer().issue(ANA)[1].jti


def test_token_is_valid_until_its_lifetime_ends():
    clock = Clock()
    token, _ = signer(clock).issue(ANA)
    clock.now += LIFETIME - 1
    assert signer(clock).verify(token).user_id == ANA.id


def test_expired_token_is_refused():
    clock = Clock()
    token, _ = signer(clock).issue(ANA)
    clock.now += LIFETIME
    with pytest.raises(TokenError, match="expired"):
        signer(clock).verify(token)


def test_token_with_a_changed_role_is_refused():
    token, _ = signer().issue(ANA)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenError, match="invalid"):
        signer().verify(f"{header}.{forged}.{signature}")


def test_token_signed_with_another_key_is_refused():
    token, _ = signer(key=b"x" * 32).issue(ANA)
    with pytest.raises(TokenError, match="invalid"):
        signer().verify(token)


def test_unsigned_alg_none_token_is_refused():
    payload = {"iss": "refineryiq-edge", "sub": "7", "role": "admin", "iat": 1_800_000_000,
               "exp": 1_900_000_000, "jti": "x"}
    token = jwt.encode(payload, None, algorithm="none")
    with pytest.raises(TokenError):
        signer().verify(token)


def test_garbage_is_refused():
    with pytest.raises(TokenError):
        signer().verify("master-token")


def test_short_signing_key_is_refused():
    with pytest.raises(ValueError):
        TokenSigner(b"short", LIFETIME)


def test_roles_are_ordered_viewer_operator_supervisor_admin():
    assert Role.VIEWER < Role.OPERATOR < Role.SUPERVISOR < Role.ADMIN


@pytest.mark.parametrize("text", ["viewer", "Operator", " SUPERVISOR ", "admin"])
def test_role_parses_from_its_name_in_any_case(text):
    assert Role.parse(text).label == text.strip().lower()


def test_unknown_role_names_the_choices():
    with pytest.raises(ValueError, match="viewer, operator, supervisor, admin"):
        Role.parse("root")


def test_signing_key_is_generated_once_with_mode_0600(tmp_path):
    key = load_signing_key(AuthSettings(), tmp_path)
    path = tmp_path / KEY_FILE
    assert len(key) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_signing_key(AuthSettings(), tmp_path) == key


def test_configured_signing_key_is_used_instead_of_the_state_dir(tmp_path):
    settings = AuthSettings(signing_key="s" * 40)
    assert load_signing_key(settings, tmp_path) == b"s" * 40
    assert not (tmp_path / KEY_FILE).exists()


def test_configured_signing_key_shorter_than_32_characters_is_a_config_error():
    with pytest.raises(ValueError, match="at least 32"):
        AuthSettings(signing_key="too short")


@pytest.mark.parametrize(("host", "configured", "needed"), [
    ("127.0.0.1", None, False), ("::1", None, False), ("localhost", None, False),
    ("0.0.0.0", None, True), ("10.1.2.3", None, True),
    ("127.0.0.1", True, True), ("0.0.0.0", False, False),
])
def test_reads_need_a_token_beyond_loopback_unless_configured(host, configured, needed):
    settings = GatewaySettings(http={"host": host}, auth={"require_token_for_reads": configured})
    assert reads_need_token(settings) is needed
