"""The local stack: embedded AWS services, and gateways that run the functions as API Gateway would."""
