"""Embeddings for retrieval, when configured (`KALLO_EMBEDDING_MODEL=bedrock:<model id>`).

Off by default: BM25 alone needs no model access, costs nothing per document and is deterministic
(see the package docstring). With Amazon Titan Text Embeddings v2, each text is embedded in 256
normalised dimensions: a quarter of the default size, which keeps stored indexes and the pure-Python
cosine small while losing little retrieval quality (per AWS's published figures for v2).
"""

from __future__ import annotations

import json

from kallo import aws
from kallo.settings import get_settings

DIMENSIONS = 256
# Titan v2 accepts at most 50,000 characters per text; passages and sentences are far shorter, but a
# pathological one (a table without spaces) is cut rather than failing the whole data source.
MAX_INPUT_CHARS = 50_000


def embed(texts: list[str]) -> list[list[float]] | None:
    """One vector per text, in order; None when no embedding model is configured."""
    model = get_settings().embedding_model
    if not model:
        return None
    provider, _, model_id = model.partition(":")
    if provider != "bedrock" or not model_id:
        raise ValueError(f"unsupported embedding model {model!r}: expected bedrock:<model id>")
    client = aws.client("bedrock-runtime")
    vectors = []
    for text in texts:
        response = client.invoke_model(
            modelId=model_id,
            contentType="application/json",
            accept="application/json",
            body=json.dumps(
                {"inputText": text[:MAX_INPUT_CHARS], "dimensions": DIMENSIONS, "normalize": True}
            ),
        )
        vectors.append(json.loads(response["body"].read())["embedding"])
    return vectors
