"""Who may still hear a convo: the check every broadcast, and every client message, makes of a connection.

I8 (live access): a connection hears a convo only while its principal may view it. `$connect` checks
once and stores the principal on the connection (userId, scheme, tokenId, scope, isServiceAccount);
afterwards a grant may be removed, a token revoked or a convo deleted, so each connection is checked
again here, from its stored principal:
- its credential must still stand: an access token on record, unrevoked, unexpired, for the same user;
  the API key it connected with (its hash is stored on the connection) still on record;
- `Access(principal)` must hold `can_view` on the convo (scope included).
A connection that fails is refused: a broadcast does not post to it, and `kallo.realtime.drop` forgets
it and closes its socket.

Bound and cost: a verdict is kept in the process for `RECHECK_SECONDS` (3 s), so delivery to a revoked
connection ends within that time (plus the time a broadcast takes), and a streaming answer that
broadcasts many deltas checks each connection at most once per interval. With a verdict the grants it
was made on are kept (the Access, handed out as a `snapshot`): a client message within the interval is
evaluated on them, so a sender's permissions (`can_chat`, ...) are those read at most 3 s before, the
same bound. A check of the `n` unremembered connections of one convo costs, whatever `n`: one Query per
object of the convo's chain that can inherit (the convo, its topic) + 1 BatchGetItem (every principal's
grants on that chain, the access-token and API-key records of those that use one, and the item of the
topic that owns the convo, kept with the verdict: a message's step that leaves `reply` out takes the
topic's `config.defaults.reply` from it, `kallo.services.steps`, no older than the verdict). The chain's
structural grants read by a check are reused by the next check of the same convo within
`CHAIN_SECONDS` (1 s: the sender's check and its message's broadcast), which then costs the
BatchGetItem alone.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any

from kallo.auth.principal import Principal
from kallo.authz.access import Access, preload_many
from kallo.authz.policy import ObjectType, Permission
from kallo.clock import now_iso
from kallo.store import credentials
from kallo.store.keys import Ref

RECHECK_SECONDS = 3.0
CHAIN_SECONDS = 1.0
_MAX_REMEMBERED = 4096

# (connectionId, convoId) → (monotonic time the verdict expires, the Access admitted, or None: refused)
_verdicts: dict[tuple[str, str], tuple[float, Access | None]] = {}
# convoId → (monotonic time read, the structural grants of the convo's chain then)
_chains: dict[str, tuple[float, dict[Ref, list[dict[str, Any]]]]] = {}
_lock = threading.Lock()


def forget() -> None:
    """Drop every remembered verdict (tests, and a process pointed at another stack)."""
    with _lock:
        _verdicts.clear()
        _chains.clear()


def admit(convo_id: str, targets: Sequence[dict[str, Any]]) -> list[Access | None]:
    """For each connection item of the convo, the Access of its principal when it may still hear the
    convo, else None. A connection whose principal cannot be read is refused."""
    moment = time.monotonic()
    result: list[Access | None] = [None] * len(targets)
    unchecked: list[tuple[int, Principal, dict[str, Any]]] = []
    with _lock:
        remembered = {i: _verdicts.get(_key(t, convo_id)) for i, t in enumerate(targets)}
    for index, target in enumerate(targets):
        principal = _principal(target, convo_id)
        if principal is None:
            continue
        verdict = remembered[index]
        if verdict is not None and verdict[0] > moment:
            admitted = verdict[1]
            result[index] = admitted.snapshot() if admitted is not None else None
        else:
            unchecked.append((index, principal, target))
    if unchecked:
        checked = _check(convo_id, [(p, t) for _, p, t in unchecked])
        for (index, _, _), access in zip(unchecked, checked, strict=True):
            result[index] = access
    with _lock:
        if len(_verdicts) >= _MAX_REMEMBERED:
            _verdicts.clear()
        for index, _, _ in unchecked:
            admitted = result[index]
            kept = admitted.snapshot() if admitted is not None else None
            _verdicts[_key(targets[index], convo_id)] = (moment + RECHECK_SECONDS, kept)
    return result


def _key(target: dict[str, Any], convo_id: str) -> tuple[str, str]:
    return str(target.get("connectionId", "")), convo_id


def _principal(target: dict[str, Any], convo_id: str) -> Principal | None:
    """The principal stored on a connection of this convo; None for an item that has none (or names
    another convo, or does not parse), which is then refused."""
    context = target.get("principal")
    if target.get("convoId") != convo_id or not isinstance(context, dict):
        return None
    try:
        principal = Principal.from_context(context)
    except (KeyError, TypeError, ValueError, json.JSONDecodeError):
        return None
    if not principal.user_id or principal.user_id != target.get("userId"):
        return None
    return principal


def _check(convo_id: str, connections: list[tuple[Principal, dict[str, Any]]]) -> list[Access | None]:
    """Check the connections now: their credentials and `can_view` on the convo, all read at once."""
    token_ids, key_hashes = _credentials_of(connections)
    accesses = [Access(p) for p, _ in connections]
    convo = Ref(ObjectType.convo.value, convo_id)
    moment = time.monotonic()
    with _lock:
        chain = _chains.get(convo_id)
    recent = chain[1] if chain is not None and moment - chain[0] < CHAIN_SECONDS else None
    records = preload_many(
        accesses,
        convo,
        structural=recent,
        also=credentials.record_keys(token_ids, key_hashes),
        owner_item=True,
    )
    if accesses:
        with _lock:
            _chains[convo_id] = (moment, dict(accesses[0]._structural)) if recent is None else chain
            if len(_chains) >= _MAX_REMEMBERED:
                _chains.clear()
    live = live_credentials(connections, credentials.sort_records(records, key_hashes))
    return [
        access if ok and access.can(convo, Permission.can_view) else None
        for access, ok in zip(accesses, live, strict=True)
    ]


def _credentials_of(connections: list[tuple[Principal, dict[str, Any]]]) -> tuple[set[str], set[str]]:
    """The access-token ids and API-key hashes the connections were opened with."""
    token_ids = {p.token_id for p, _ in connections if p.scheme == "access_token" and p.token_id}
    key_hashes = {
        str(t["apiKeyHash"]) for p, t in connections if p.scheme == "api_key" and t.get("apiKeyHash")
    }
    return token_ids, key_hashes


def live_credentials(
    connections: list[tuple[Principal, dict[str, Any]]],
    records: tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]] | None = None,
) -> list[bool]:
    """Whether the credential each connection was opened with still stands: an access token on
    record, unrevoked, unexpired and the same user's; an API key on record for the same user. (An OIDC
    identity has nothing Kallo can revoke: its user's grants are what is checked.) `records`: the
    access-token and API-key records already read (else they are read now)."""
    if records is None:
        records = credentials.live_records(*_credentials_of(connections))
    tokens, api_keys = records
    moment = now_iso()
    live = []
    for principal, target in connections:
        if principal.scheme == "access_token":
            record = tokens.get(principal.token_id or "")
            live.append(
                record is not None
                and not record.get("revokedAt")
                and record.get("userId") == principal.user_id
                and str(record.get("expiresAt", "")) > moment
            )
        elif principal.scheme == "api_key":
            key = api_keys.get(str(target.get("apiKeyHash") or ""))
            live.append(key is not None and key.get("userId") == principal.user_id)
        else:
            live.append(True)
    return live
