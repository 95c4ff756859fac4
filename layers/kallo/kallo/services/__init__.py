"""Domain logic, one module per area. Services take an `Access` (the caller) and plain values or
request models, raise `kallo.errors` and return stored dicts; they know nothing of HTTP or boto3."""
