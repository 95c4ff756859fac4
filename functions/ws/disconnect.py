"""$disconnect: the connection is forgotten (it no longer receives the convo's messages)."""

from kallo.websocket import disconnect, lambda_handler_for

lambda_handler = lambda_handler_for(disconnect)
