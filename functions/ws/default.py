"""$default: a frame that is not JSON gets `error` `malformed_message`; a message of no known type gets
`error` `unknown_message_type` (to the sender only, echoing its requestId)."""

from kallo.websocket import default, lambda_handler_for

lambda_handler = lambda_handler_for(default)
