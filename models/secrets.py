"""Secrets at rest: encrypted with a Fernet key from SYNCJOBS_SECRET_KEY, shown to the world as "***"."""

import re

from cryptography.fernet import Fernet, InvalidToken

from models.errors import SyncJobsError

PREFIX = "enc:v1:"
MAKE_A_KEY = (
    "Make one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)
MASK = "***"


class SecretKeyInvalid(SyncJobsError):
    """SYNCJOBS_SECRET_KEY is not a Fernet key (32 url-safe base64-encoded bytes)."""

    code = "secret_key_invalid"


class SecretBox:
    """Encrypts and decrypts the secret fields of data sources and destinations."""

    def __init__(self, key: str):
        try:
            self._fernet = Fernet(key.encode())
        except (ValueError, TypeError) as exc:
            raise SecretKeyInvalid() from exc

    @classmethod
    def from_key(cls, key: str | None, *, purpose: str = "data-source secrets") -> "SecretBox":
        if not key:
            raise SecretKeyInvalid(
                f"Set SYNCJOBS_SECRET_KEY (a Fernet key): it encrypts {purpose} at rest. {MAKE_A_KEY}"
            )
        return cls(key)

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode()

    def seal(self, value: str) -> str:
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open(self, value: str) -> str:
        if not is_sealed(value):
            return value
        try:
            return self._fernet.decrypt(value[len(PREFIX) :].encode()).decode()
        except InvalidToken as exc:
            raise SecretKeyInvalid("A stored secret does not open with SYNCJOBS_SECRET_KEY") from exc


def is_sealed(value: str) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


# scheme://user:password@ — also for mongodb:// URLs with several hosts, which urlsplit cannot parse.
USER_INFO = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/]*)(?::(?P<password>[^@/]*))?@", re.I)


def has_credentials(url: str) -> bool:
    return USER_INFO.match(url) is not None


def masked_url(url: str) -> str:
    """The URL with the password of its user info replaced by ***; for display and logs only."""
    return USER_INFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", url, count=1)


def seal_fields(
    fields: dict,
    *,
    maps: tuple[str, ...],
    urls: tuple[str, ...],
    box: SecretBox,
    previous: dict | None = None,
) -> dict:
    """`fields` ready to store: secret values sealed; a "***" sent back keeps the stored secret."""
    previous = previous or {}
    sealed = dict(fields)
    for name in maps:
        stored = previous.get(name) or {}
        sealed[name] = {
            key: stored[key] if value == MASK and key in stored else box.seal(value)
            for key, value in (sealed.get(name) or {}).items()
        }
    for name in urls:
        value = sealed.get(name)
        if not value or not has_credentials(value):
            continue
        stored = previous.get(name)
        if stored and MASK in value and masked_url(box.open(stored)) == value:
            sealed[name] = stored
        else:
            sealed[name] = box.seal(value)
    return sealed


def masked_fields(doc: dict, *, maps: tuple[str, ...], urls: tuple[str, ...], box: SecretBox) -> dict:
    """`doc` fit to show: secret values as "***", passwords in URLs as "***"."""
    shown = dict(doc)
    for name in maps:
        if shown.get(name):
            shown[name] = {key: MASK for key in shown[name]}
    for name in urls:
        if shown.get(name):
            shown[name] = masked_url(box.open(shown[name]))
    return shown


def opened_fields(doc: dict, *, maps: tuple[str, ...], urls: tuple[str, ...], box: SecretBox) -> dict:
    """`doc` with its secrets in clear text: for the sync process only, never for display."""
    opened = dict(doc)
    for name in maps:
        if opened.get(name):
            opened[name] = {key: box.open(value) for key, value in opened[name].items()}
    for name in urls:
        if opened.get(name):
            opened[name] = box.open(opened[name])
    return opened


def secret_box_from(settings) -> SecretBox:
    """The SecretBox of SYNCJOBS_SECRET_KEY; a clear error when it is unset or malformed."""
    key = settings.syncjobs_secret_key
    return SecretBox.from_key(key.get_secret_value() if key else None)
