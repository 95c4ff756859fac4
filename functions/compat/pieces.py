"""The Pieces conversations surface (`kallo.surfaces.pieces`): one function for the whole surface, an
ASGI app on Mangum, behind `/pieces/{proxy+}`."""

from kallo.surfaces import lambda_handler_for_asgi, pieces

app = pieces.app
lambda_handler = lambda_handler_for_asgi(app)
