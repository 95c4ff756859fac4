"""Gloo KaLLM message (seed 002): POST /gloo/ai/v1/message/kallm, an ASGI app on Mangum
(`kallo.surfaces.gloo` translates; docs/COMPATIBILITY.md, "Gloo KaLLM")."""

from kallo.surfaces import gloo, lambda_handler_for_asgi

app = gloo.app
lambda_handler = lambda_handler_for_asgi(app)
