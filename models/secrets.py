"""Secrets at rest: encrypted with a Fernet key from SYNCJOBS_SECRET_KEY, shown to the world as "***"."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from cryptography.fernet import Fernet, InvalidToken

from models.errors import SyncJobsError, ValidationFailed

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
                "Set SYNCJOBS_SECRET_KEY or SYNCJOBS_SECRET_KEY_FILE (a Fernet key): "
                f"it encrypts {purpose} at rest. {MAKE_A_KEY}"
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
# Options of a MongoDB URL that carry credentials; the others (replicaSet, authSource, tls...) are shown.
MONGODB_SECRET_OPTION = re.compile(r"(password|secret|token|key|credential|mechanismproperties)", re.I)
# Shorter values would be masked wherever the same few characters happen to appear, and guessed easily.
MIN_SECRET_CHARS = 8
RETARGETED = "Re-enter the secrets when the target changes"


def _query_pairs(url: str) -> tuple[str, list[tuple[str, str]], str]:
    """(everything before the query, [(key, raw value)], the fragment with its #)."""
    head, question, rest = url.partition("?")
    if not question:
        return url, [], ""
    query, hash_, fragment = rest.partition("#")
    pairs = [(key, value) for key, _, value in (part.partition("=") for part in query.split("&") if part)]
    return head, pairs, hash_ + fragment


def _secret_option(url: str, key: str) -> bool:
    # An HTTP API's query parameter may be its key, whatever its name; a MongoDB URL's options say so.
    return not url.lower().startswith("mongodb") or MONGODB_SECRET_OPTION.search(key) is not None


def url_secrets(url: str) -> list[str]:
    """The secret parts of a URL as written: the password of its user info and the secret query values."""
    found = []
    match = USER_INFO.match(url)
    if match and match["password"]:
        found.append(match["password"])
    _, pairs, _ = _query_pairs(url)
    found += [value for key, value in pairs if value and _secret_option(url, key)]
    return found


def masked_url(url: str) -> str:
    """The URL with its secret parts as ***; for display and logs only."""
    shown = USER_INFO.sub(
        lambda m: f"{m['scheme']}{m['user']}:{MASK}@" if m["password"] else m[0], url, count=1
    )
    head, pairs, fragment = _query_pairs(shown)
    if not pairs:
        return shown
    query = "&".join(f"{key}={MASK if value and _secret_option(url, key) else value}" for key, value in pairs)
    return f"{head}?{query}{fragment}"


def _too_short(field: str) -> ValidationFailed:
    return ValidationFailed(
        f"Secret values have at least {MIN_SECRET_CHARS} characters",
        details=[{"field": field, "message": f"at least {MIN_SECRET_CHARS} characters"}],
    )


@dataclass(frozen=True)
class SecretLayout:
    """Where the secrets of one type of resource are: dict fields whose values are secret (top-level, and
    in each of its `entities`), URL fields, and what decides where they are sent (`target`, of the
    document in clear text)."""

    maps: tuple[str, ...] = ()
    entity_maps: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    target: Callable[[dict], Any] = lambda doc: None


def _resealed(stored: str, box: "SecretBox") -> str:
    # Params and query strings were kept in clear text before they counted as secrets: sealed when kept.
    return stored if is_sealed(stored) else box.seal(stored)


def _seal_map(values: dict | None, stored: dict | None, box: "SecretBox", field: str, kept: list) -> dict:
    sealed = {}
    for key, value in (values or {}).items():
        if value == MASK:
            if not stored or key not in stored:
                raise ValidationFailed(
                    "*** stands for a stored secret, and none is stored under this name",
                    details=[{"field": f"{field}.{key}", "message": "send the secret's value"}],
                )
            sealed[key] = _resealed(stored[key], box)
            kept.append(f"{field}.{key}")
        elif len(value) < MIN_SECRET_CHARS:
            raise _too_short(f"{field}.{key}")
        else:
            sealed[key] = box.seal(value)
    return sealed


def seal_fields(fields: dict, layout: SecretLayout, box: "SecretBox", previous: dict | None = None) -> dict:
    """`fields` ready to store: secret values sealed; a "***" sent back keeps the stored secret, unless
    the secret would now go elsewhere (ValidationFailed: re-enter it)."""
    previous = previous or {}
    kept: list[str] = []
    sealed = dict(fields)
    for name in layout.maps:
        sealed[name] = _seal_map(sealed.get(name), previous.get(name), box, name, kept)
    if layout.entity_maps and sealed.get("entities"):
        before = {entity.get("name"): entity for entity in previous.get("entities") or []}
        entities = []
        for index, entity in enumerate(sealed["entities"]):
            entity = dict(entity)
            for name in layout.entity_maps:
                stored = before.get(entity.get("name"), {}).get(name)
                entity[name] = _seal_map(entity.get(name), stored, box, f"entities.{index}.{name}", kept)
            entities.append(entity)
        sealed["entities"] = entities
    for name in layout.urls:
        value = sealed.get(name)
        secrets = url_secrets(value) if isinstance(value, str) else []
        if not value or not secrets:
            continue
        stored = previous.get(name)
        if stored and masked_url(box.open(stored)) == value:
            sealed[name] = _resealed(stored, box)
            kept.append(name)
        elif MASK in secrets:
            # Only a stored secret is shown as ***: this one is being sent to another URL (or none is stored).
            message = RETARGETED if stored else "*** stands for a stored secret, and none is stored here"
            raise ValidationFailed(message, details=[{"field": name, "message": "re-enter the secret"}])
        elif any(len(secret) < MIN_SECRET_CHARS for secret in secrets):
            raise _too_short(name)
        else:
            sealed[name] = box.seal(value)
    if kept and previous and layout.target(fields) != layout.target(opened_fields(previous, layout, box)):
        raise ValidationFailed(
            RETARGETED, details=[{"field": field, "message": "re-enter the secret"} for field in kept]
        )
    return sealed


def masked_fields(doc: dict, layout: SecretLayout, box: "SecretBox") -> dict:
    """`doc` fit to show: secret values as "***", secret parts of URLs as "***"."""
    shown = dict(doc)
    for name in layout.maps:
        if shown.get(name):
            shown[name] = {key: MASK for key in shown[name]}
    if layout.entity_maps and shown.get("entities"):
        shown["entities"] = [
            {
                **entity,
                **{
                    name: {key: MASK for key in entity[name]}
                    for name in layout.entity_maps
                    if entity.get(name)
                },
            }
            for entity in shown["entities"]
        ]
    for name in layout.urls:
        if shown.get(name):
            shown[name] = masked_url(box.open(shown[name]))
    return shown


def opened_fields(doc: dict, layout: SecretLayout, box: "SecretBox") -> dict:
    """`doc` with its secrets in clear text: for the sync process only, never for display."""
    opened = dict(doc)
    for name in layout.maps:
        if opened.get(name):
            opened[name] = {key: box.open(value) for key, value in opened[name].items()}
    if layout.entity_maps and opened.get("entities"):
        opened["entities"] = [
            {
                **entity,
                **{
                    name: {key: box.open(value) for key, value in entity[name].items()}
                    for name in layout.entity_maps
                    if entity.get(name)
                },
            }
            for entity in opened["entities"]
        ]
    for name in layout.urls:
        if opened.get(name):
            opened[name] = box.open(opened[name])
    return opened


def secret_values(opened: dict, layout: SecretLayout) -> list[str]:
    """Every secret of a document in clear text (URL parts also percent-decoded): what logs must mask."""
    values = [value for name in layout.maps for value in (opened.get(name) or {}).values()]
    for entity in opened.get("entities") or []:
        values += [value for name in layout.entity_maps for value in (entity.get(name) or {}).values()]
    for name in layout.urls:
        for secret in url_secrets(opened.get(name) or ""):
            values += [secret, unquote_plus(secret)]
    return [value for value in dict.fromkeys(values) if isinstance(value, str) and value]


def secret_box_from(settings) -> SecretBox:
    """The SecretBox of SYNCJOBS_SECRET_KEY; a clear error when it is unset or malformed."""
    key = settings.syncjobs_secret_key
    if key is None and settings.syncjobs_secret_key_file:
        # A file (a Docker or Kubernetes secret) keeps the key out of the process environment.
        try:
            return SecretBox.from_key(Path(settings.syncjobs_secret_key_file).read_text().strip())
        except OSError as error:
            raise SecretKeyInvalid(f"SYNCJOBS_SECRET_KEY_FILE cannot be read: {error.strerror}") from None
    return SecretBox.from_key(key.get_secret_value() if key else None)
