"""Key builders for the single DynamoDB table, and the entity chart they implement.

Every item has `PK` and `SK`; some also fill the overloaded global secondary index GSI1
(`GSI1PK`/`GSI1SK`) and carry `ttl` (epoch seconds) for DynamoDB's time-to-live.

Entity chart
| entity          | PK                      | SK                              | GSI1PK                          | GSI1SK                     | ttl |
|-----------------|-------------------------|---------------------------------|---------------------------------|----------------------------|-----|
| object (user, team, topic, convo, prompt, data_source) | `OBJ#<type>#<id>` | `#META` | -            | -                          |     |
| grant           | `OBJ#<type>#<id>`       | `GRANT#<granteeType>#<granteeId>` | `GRANTEE#<granteeType>#<granteeId>` | `<type>#<id>`     |     |
| invitation      | `OBJ#<type>#<id>`       | `INVITE#<email>`                | `INVITEE#<email>`               | `<type>#<id>`              | yes |
| unique OIDC identity | `IDENTITY#<issuer>#<sub>` | `#UNIQUE`                 | -                               | -                          |     |
| unique verified email | `EMAIL#<email>`   | `#UNIQUE`                       | -                               | -                          |     |
| tenant-local email | `LOCALEMAIL#<serviceAccountId>#<email>` | `#UNIQUE`    | -                               | -                          |     |
| API key         | `APIKEY#<sha256 of key>`| `#META`                         | `APIKEYS#<userId>`              | `<createdAt>`              |     |
| access token    | `TOKEN#<jti>`           | `#META`                         | `TOKENS#<creator userId>`       | `<createdAt>`              | yes |
| app key         | `APPKEY#<sha256 of key>`| `#META`                         | `APPKEYS#<topicId>`             | `<createdAt>#<appKeyId>`   |     |
| end user claim  | `ENDUSER#<topicId>#<tenantId>#<sha256 of user>` | `#UNIQUE` | -                           | -                          |     |
| step            | `OBJ#convo#<convoId>`   | `STEP#<createdAt>#<stepId>`     | `STEP#<stepId>`                 | `#META`                    |     |
| contributor marker | `OBJ#convo#<convoId>` | `CONTRIB#<userId>`            | -                               | -                          |     |
| connection      | `CONN#<connectionId>`   | `#META`                         | -                               | -                          | yes |
| convo connection | `OBJ#convo#<convoId>`  | `CONN#<connectionId>`           | -                               | -                          | yes |
| stream connection | `STREAMS#<userId>`    | `CONN#<connectionId>`           | -                               | -                          | yes |
| group member    | `OBJ#convo#<convoId>`   | `GROUP#<groupId>#<createdAt>#<stepId>` | -                        | -                          |     |
| search posting  | `OBJ#convo#<convoId>`   | `TERM#<stepId>#<term>`          | `TERM#<term>`                   | `<createdAt>#<stepId>`     |     |
| data source summary | `OBJ#data_source#<id>` | `#SUMMARY`                   | -                               | -                          |     |
| export          | `EXPORT#<exportId>`     | `#META`                         | -                               | -                          | yes |
| quota counter   | `QUOTA#<type>#<id>`     | `<counter>#<window start>`      | -                               | -                          | yes |
| step feedback   | `FEEDBACK#<stepId>`     | `USER#<userId>`                 | -                               | -                          |     |

A grant says "grantee G holds role R on object O"; there is at most one per (object, grantee). Grants
whose grantee is a team, topic or convo ("structural" grants: ownership and dependent links) sort
before user grants (`GRANT#convo#`, `GRANT#team#`, `GRANT#topic#` < `GRANT#user#`), so one query reads
an object's structural grants without touching its (possibly many) user grants.

A step group (a primary step and its alternates) has one member item per step, so a group is read
without reading the whole convo; a step's search postings (one per distinct word of its text) are
found by word through GSI1, newest first. Both live in the convo's partition, so deleting a convo
(the purge worker empties the partition) removes them too.

User claims (I2, identity): an OIDC user is keyed by (issuer, subject), never by `sub` alone: two
issuers may hand out the same `sub` to two different people (a configured issuer never contains `#`,
so the key is unambiguous). `EMAIL#` is claimed only by an OIDC user whose issuer verified the address
(`email_verified` exactly true); the email a service account gives a user it creates is claimed only
within that service account (`LOCALEMAIL#`), so no tenant can take an address from another tenant or
from the person it belongs to.

An app key stands for one topic (the compatibility surfaces' credential); it is found by its hash and
listed by topic, and the topic's purge deletes its keys. An end user (a `user` value of an app key's
requests) is a user created by the key's tenant; its claim makes it one per (topic, tenant, `user`
value), the value hashed so that any string makes a bounded key. It is never found by email (I1/I2).

A quota counter counts one thing (`requests`, `tokens`, `upload_bytes`, `summaries`, `exports`,
`invitation_mails`) for one subject (a user, a team, or an OIDC identity without a user:
`QUOTA#oidc#<sub>`) in one fixed window, whose start (epoch seconds) ends its sort key; it is only ever
changed with `ADD`, and its `ttl` is the end of its window, so old windows disappear by themselves.
`invitation_mails` is the inviting user's (`QUOTA#user#<id>` / `invitation_mails#<UTC day start>`),
never the object's nor the invitee's, so neither choosing objects nor another tenant's invitations
move it (I9).

A step feedback item is one user's rating of one answer (`kallo.store.feedback`); the step's own item
carries the counts (`feedback {likes, dislikes}`), changed in the same transaction. It is keyed by the
step alone, so one user's ratings of many steps are one BatchGetItem without their convos; a step that
has counts is the only kind with feedback items, which its deletion (and the purge of its convo)
removes with one Query. A completed answer's follow-up suggestions are kept on its step item
(`suggestions`), made under a lease (`suggestionsLeasedUntil`, epoch seconds) so one caller makes them.

A stream connection (a WebSocket that hears the identifiers of its user's convos, the Pieces surface's
identifiers stream) has its own item under `CONN#<connectionId>` too (for `$disconnect`), and a copy in
its user's `STREAMS#` partition, so a change to a convo reaches the streams of each user who can view it
with one query per user.

A data source's bytes, text and retrieval index are in S3 (`kallo.store.blobs`); its summary lives in
its partition, so deleting the data source's partition removes it. The data sources linked to a convo
or topic are pattern 6 (the convo's or topic's `dependent` grants, GSI1 `GRANTEE#convo#<id>`,
`data_source#`).

Access patterns
| #  | pattern                                      | key condition                                              | method |
|----|----------------------------------------------|------------------------------------------------------------|--------|
| 1  | get an object                                | PK=`OBJ#t#id`, SK=`#META`                                  | `objects.get` |
| 2  | get many objects                             | BatchGetItem of (1)                                        | `objects.batch_get` |
| 3  | a grantee's grant on an object               | PK=`OBJ#t#id`, SK=`GRANT#gt#gid`                           | `grants.get` |
| 4  | an object's structural grants                | PK=`OBJ#t#id`, SK between `GRANT#` and `GRANT#topic#~`     | `grants.structural` |
| 4b | an object's structural grants and one user's grant on it | PK=`OBJ#t#id`, SK between `GRANT#` and `GRANT#user#<userId>`, filter granteeType ≠ user or granteeId = userId | `grants.structural_and_own` |
| 5  | an object's user grants (e.g. team members)  | PK=`OBJ#t#id`, SK begins_with `GRANT#user#`                | `grants.of_object` |
| 6  | the objects a grantee holds grants on        | GSI1PK=`GRANTEE#gt#gid`, GSI1SK begins_with `<type>#`      | `grants.of_grantee` |
| 7  | a user by OIDC identity / verified email / a service account's email | PK=`IDENTITY#iss#sub` / `EMAIL#email` / `LOCALEMAIL#svc#email`, SK=`#UNIQUE`, then (1) | `users.find_by_*` |
| 8  | an object's invitations                      | PK=`OBJ#t#id`, SK begins_with `INVITE#`                    | `invitations.of_object` |
| 9  | invitations sent to an email                 | GSI1PK=`INVITEE#email`                                     | `invitations.for_email` |
| 10 | an API key by its hash                       | PK=`APIKEY#hash`, SK=`#META`                               | `credentials.get_api_key` |
| 11 | an access token by id                        | PK=`TOKEN#jti`, SK=`#META`                                 | `credentials.get_access_token` |
| 12 | a convo's steps, oldest first                | PK=`OBJ#convo#id`, SK begins_with `STEP#` (> `STEP#<after>`) | `steps.of_convo` |
| 13 | a step by id                                 | GSI1PK=`STEP#<stepId>`                                     | `steps.get` |
| 14 | a connection by id                           | PK=`CONN#<connectionId>`, SK=`#META`                       | `connections.get` |
| 15 | a convo's connections                        | PK=`OBJ#convo#id`, SK begins_with `CONN#`                  | `connections.of_convo` |
| 16 | a convo's contributors                       | PK=`OBJ#convo#id`, SK begins_with `CONTRIB#`               | `steps.contributors` |
| 17 | the steps of a group, oldest first           | PK=`OBJ#convo#id`, SK begins_with `GROUP#<groupId>#`, then BatchGetItem of the steps | `steps.group` |
| 18 | many steps by key                            | BatchGetItem of PK=`OBJ#convo#id`, SK=`STEP#<createdAt>#<stepId>` | `steps.batch_get` |
| 19 | the steps containing a word, newest first    | GSI1PK=`TERM#<term>` (descending GSI1SK)                   | `search.postings` |
| 20 | a data source's summary (with its item: SK begins_with `#`) | PK=`OBJ#data_source#id`, SK=`#SUMMARY` | `summaries.get`, `summaries.with_data_source` |
| 21 | an export by id                              | PK=`EXPORT#<exportId>`, SK=`#META`                         | `export_key` |
| 22 | a subject's counter in one window (I10)      | PK=`QUOTA#<type>#<id>`, SK=`<counter>#<window start>` (UpdateItem ADD; BatchGetItem to read) | `store.quotas` |
| 23 | an app key by its hash                       | PK=`APPKEY#hash`, SK=`#META`                               | `app_keys.get` |
| 24 | a topic's app keys, oldest first             | GSI1PK=`APPKEYS#<topicId>`                                 | `app_keys.of_topic` |
| 25 | an end user by (topic, tenant, `user` value) | PK=`ENDUSER#<topicId>#<tenantId>#<hash>`, SK=`#UNIQUE`                   | `users.find_end_user` |
| 26 | a user's feedback on a step (on many: BatchGetItem) | PK=`FEEDBACK#<stepId>`, SK=`USER#<userId>`         | `feedback.get`, `feedback.ratings` |
| 27 | every feedback item of a step                | PK=`FEEDBACK#<stepId>`                                     | `feedback.delete_of_step` |
| 28 | a user's identifiers-stream connections      | PK=`STREAMS#<userId>`, SK begins_with `CONN#`              | `connections.streams_of` |
| 29 | a convo's running steps (convoSync)          | PK=`OBJ#convo#id`, SK between `STEP#` and `STEP#~`, filter `status = running`, strongly consistent | `steps.running_of_convo` |
| 30 | everything in an object's partition (a deletion, the purge) | PK=`OBJ#t#id`                   | `objects.partition`, `objects.partition_page` |
"""

from __future__ import annotations

from typing import NamedTuple

META = "#META"
UNIQUE = "#UNIQUE"
# The highest structural grantee type, plus a character above every id character.
_STRUCTURAL_END = "GRANT#topic#~"


class Ref(NamedTuple):
    """A typed reference to an object: an objectType (or granteeType) and its id."""

    type: str
    id: str

    def __str__(self) -> str:
        return f"{self.type}#{self.id}"


def object_pk(ref: Ref) -> str:
    return f"OBJ#{ref.type}#{ref.id}"


def object_key(ref: Ref) -> dict[str, str]:
    return {"PK": object_pk(ref), "SK": META}


def grant_sk(grantee: Ref) -> str:
    return f"GRANT#{grantee.type}#{grantee.id}"


def grant_key(obj: Ref, grantee: Ref) -> dict[str, str]:
    return {"PK": object_pk(obj), "SK": grant_sk(grantee)}


def grant_index_keys(obj: Ref, grantee: Ref) -> dict[str, str]:
    return {"GSI1PK": grantee_pk(grantee), "GSI1SK": str(obj)}


def grantee_pk(grantee: Ref) -> str:
    return f"GRANTEE#{grantee.type}#{grantee.id}"


def structural_grant_range() -> tuple[str, str]:
    return "GRANT#", _STRUCTURAL_END


def invitation_key(obj: Ref, email: str) -> dict[str, str]:
    return {"PK": object_pk(obj), "SK": f"INVITE#{email}"}


def invitee_pk(email: str) -> str:
    return f"INVITEE#{email}"


def identity_key(issuer: str, subject: str) -> dict[str, str]:
    """The claim of an OIDC identity: its issuer and its `sub` together (I2)."""
    return {"PK": f"IDENTITY#{issuer}#{subject}", "SK": UNIQUE}


def email_key(email: str) -> dict[str, str]:
    """The global claim of a verified email address (I2)."""
    return {"PK": f"EMAIL#{email}", "SK": UNIQUE}


def local_email_key(service_account_id: str, email: str) -> dict[str, str]:
    """The claim of an email address a service account gave a user it created: unique within that
    service account only (I2)."""
    return {"PK": f"LOCALEMAIL#{service_account_id}#{email}", "SK": UNIQUE}


def api_key_key(key_hash: str) -> dict[str, str]:
    return {"PK": f"APIKEY#{key_hash}", "SK": META}


def api_keys_of_user_pk(user_id: str) -> str:
    return f"APIKEYS#{user_id}"


def access_token_key(token_id: str) -> dict[str, str]:
    return {"PK": f"TOKEN#{token_id}", "SK": META}


def access_tokens_of_creator_pk(user_id: str) -> str:
    return f"TOKENS#{user_id}"


def app_key_key(key_hash: str) -> dict[str, str]:
    return {"PK": f"APPKEY#{key_hash}", "SK": META}


def app_keys_of_topic_pk(topic_id: str) -> str:
    return f"APPKEYS#{topic_id}"


def end_user_key(topic_id: str, tenant_id: str, user_hash: str) -> dict[str, str]:
    """The claim of an end user: one per (topic, tenant, hashed `user` value)."""
    return {"PK": f"ENDUSER#{topic_id}#{tenant_id}#{user_hash}", "SK": UNIQUE}


def step_sk(created_at: str, step_id: str) -> str:
    return f"STEP#{created_at}#{step_id}"


def step_index_pk(step_id: str) -> str:
    return f"STEP#{step_id}"


CONNECTION_PREFIX = "CONN#"


def connection_key(connection_id: str) -> dict[str, str]:
    return {"PK": f"{CONNECTION_PREFIX}{connection_id}", "SK": META}


def convo_connection_key(convo: Ref, connection_id: str) -> dict[str, str]:
    return {"PK": object_pk(convo), "SK": f"{CONNECTION_PREFIX}{connection_id}"}


def stream_connection_key(user_id: str, connection_id: str) -> dict[str, str]:
    """A user's identifiers-stream connection, in the user's `STREAMS#` partition."""
    return {"PK": streams_pk(user_id), "SK": f"{CONNECTION_PREFIX}{connection_id}"}


def streams_pk(user_id: str) -> str:
    return f"STREAMS#{user_id}"


CONTRIBUTOR_PREFIX = "CONTRIB#"


def contributor_key(convo_id: str, user_id: str) -> dict[str, str]:
    """The marker a user's first step leaves on a convo (Query Convo Users `contributors`)."""
    return {"PK": object_pk(Ref("convo", convo_id)), "SK": f"{CONTRIBUTOR_PREFIX}{user_id}"}


GROUP_PREFIX = "GROUP#"


def group_prefix(group_id: str) -> str:
    return f"{GROUP_PREFIX}{group_id}#"


def group_member_key(convo_id: str, group_id: str, created_at: str, step_id: str) -> dict[str, str]:
    """The item saying "this step belongs to this group" (sorted by the step's creation time)."""
    return {
        "PK": object_pk(Ref("convo", convo_id)),
        "SK": f"{group_prefix(group_id)}{created_at}#{step_id}",
    }


TERM_PREFIX = "TERM#"


def posting_key(convo_id: str, step_id: str, term: str) -> dict[str, str]:
    """A search posting: "step S of convo C contains word T"."""
    return {"PK": object_pk(Ref("convo", convo_id)), "SK": f"{TERM_PREFIX}{step_id}#{term}"}


def posting_index_keys(term: str, created_at: str, step_id: str) -> dict[str, str]:
    return {"GSI1PK": term_pk(term), "GSI1SK": f"{created_at}#{step_id}"}


def term_pk(term: str) -> str:
    return f"{TERM_PREFIX}{term}"


def summary_key(data_source_id: str) -> dict[str, str]:
    return {"PK": object_pk(Ref("data_source", data_source_id)), "SK": "#SUMMARY"}


def export_key(export_id: str) -> dict[str, str]:
    return {"PK": f"EXPORT#{export_id}", "SK": META}


def quota_key(subject: Ref, counter: str, window_start: int) -> dict[str, str]:
    """A counter of one subject (user, team, OIDC identity) in the window starting at `window_start`."""
    return {"PK": f"QUOTA#{subject.type}#{subject.id}", "SK": f"{counter}#{window_start}"}


def feedback_pk(step_id: str) -> str:
    return f"FEEDBACK#{step_id}"


def feedback_key(step_id: str, user_id: str) -> dict[str, str]:
    """One user's rating of one step (an LLM answer)."""
    return {"PK": feedback_pk(step_id), "SK": f"USER#{user_id}"}
