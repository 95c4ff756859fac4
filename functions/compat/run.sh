#!/bin/sh
# The streaming Function URL's start command (the Lambda Web Adapter runs the handler as a command):
# uvicorn serves the compatibility surfaces on the port the adapter forwards requests to.
export PYTHONPATH="/opt/python:${LAMBDA_TASK_ROOT}:${PYTHONPATH}"
exec python3 -m uvicorn compat.streaming:app --host 127.0.0.1 --port "${AWS_LWA_PORT:-8080}" \
  --no-access-log --timeout-keep-alive 60
