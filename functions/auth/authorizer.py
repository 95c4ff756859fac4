"""The REST API's Lambda REQUEST authorizer: the three schemes of API.md in one place.

API Gateway answers 401 (through the UNAUTHORIZED gateway response) when this raises "Unauthorized".

I10 (cost): it runs on every request (`ReauthorizeEvery: 0`) and counts each one against the
principal's rate (`kallo.quotas`, one UpdateItem, even when the credential is cached). An authorizer can
only allow or deny, so an allowed principal over its rate gets `throttledFor` (seconds) in the context,
and the function answers 429 with `Retry-After` before doing anything (`kallo.web.principal_of`).

AWS calls: the credential's reads (none while it is cached) + 1 UpdateItem.
"""

from typing import Any

from aws_lambda_powertools import Logger

from kallo import quotas, tracing
from kallo.auth.authenticate import authenticate
from kallo.errors import Unauthorized

logger = Logger()


def policy(principal_id: str, method_arn: str, context: dict[str, Any]) -> dict[str, Any]:
    return {
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": method_arn}],
        },
        "context": context,
    }


# The event is never logged (whatever POWERTOOLS_LOGGER_LOG_EVENT says): it is the request's credentials.
@logger.inject_lambda_context(clear_state=True, log_event=False)
@tracing.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        principal = authenticate(event.get("headers") or {}, event.get("queryStringParameters") or {})
    except Unauthorized as error:
        logger.info("refused credentials", extra={"reason": error.message})
        raise Exception("Unauthorized") from None
    principal_id = principal.user_id or f"oidc:{principal.firebase_id}"
    context = principal.to_context()
    retry_after = quotas.count_request(principal.user_id, principal.firebase_id)
    if retry_after is not None:
        context[quotas.THROTTLED] = retry_after
    return policy(principal_id, event["methodArn"], context)
