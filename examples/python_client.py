"""Ask Kallo a question and print the answer as it streams in: `python examples/python_client.py "Hi"`.
KALLO_API_KEY is the key `make run` prints; KALLO_URL (http://127.0.0.1:3000) and KALLO_WS_URL (its /ws)
point at another stack: a deployed one's outputs ApiUrl and WebSocketUrl."""

import asyncio
import json
import os
import sys

import httpx
import websockets

BASE = os.environ.get("KALLO_URL", "http://127.0.0.1:3000")
KEY = {"x-api-key": os.environ["KALLO_API_KEY"]}


async def ask(question: str) -> None:
    convo = httpx.post(f"{BASE}/convos", headers=KEY, json={"name": question[:60]}).raise_for_status().json()
    socket_url = os.environ.get("KALLO_WS_URL", BASE.replace("http", "ws", 1) + "/ws")
    async with websockets.connect(f"{socket_url}?convoId={convo['id']}", additional_headers=KEY) as socket:
        step = {"content": {"text": question}, "config": {"reply": True}}
        await socket.send(json.dumps({"type": "convoNewStep", "payload": step}))
        async for frame in socket:
            message = json.loads(frame)
            kind, payload = message["type"], message["payload"]
            if kind == "error":
                sys.exit(f"{payload['code']}: {payload['message']}")
            if kind == "convoStepUpdate" and "delta" in payload:
                print(payload["delta"], end="", flush=True)
            elif kind == "convoStepUpdate" and payload.get("status") in ("completed", "stopped", "failed"):
                return print((payload.get("error") or {}).get("message", ""))


asyncio.run(ask(" ".join(sys.argv[1:]) or "What is a serverless chat backend?"))
