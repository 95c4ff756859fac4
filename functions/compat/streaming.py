"""The streaming Function URL: the three compatibility surfaces in one ASGI app, served by uvicorn
(`run.sh`) under the AWS Lambda Web Adapter in response-stream mode, so that a streamed answer's events
leave as they are made. The API Gateway routes of `DifyFunction`, `GlooFunction` and `PiecesFunction`
serve the same apps through Mangum, buffered: the fallback where a deployment cannot stream (see
docs/COMPATIBILITY.md, "Streaming in the cloud")."""

from compat import dify, gloo, pieces

from kallo.surfaces import by_prefix

app = by_prefix({"/dify/v1": dify.app, "/gloo": gloo.app, "/pieces": pieces.app})
