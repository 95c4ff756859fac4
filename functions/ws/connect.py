"""$connect: `?convoId=<uuid>` with an Authorization bearer token, a `token` query parameter (browsers)
or an x-api-key; the caller needs can_view on the convo. 200 stores the connection; 400 (no or bad
convoId), 401 (no or bad credentials), 403 (an identity with no user) and 404 (unknown or hidden convo)
refuse it."""

from kallo.websocket import connect, lambda_handler_for

lambda_handler = lambda_handler_for(connect)
