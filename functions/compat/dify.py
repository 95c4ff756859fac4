"""The Dify-style service API at /dify/v1 (`kallo.surfaces.dify`): one function for the whole surface,
an ASGI app adapted to Lambda by Mangum."""

from kallo.surfaces import dify, lambda_handler_for_asgi

app = dify.app
lambda_handler = lambda_handler_for_asgi(app)
