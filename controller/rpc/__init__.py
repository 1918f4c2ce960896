"""gRPC adapters: peer identity from mTLS, proto <-> domain conversion, one domain call, error mapping.

Nothing outside this package (and ``app.py``) imports grpc or the generated modules.
"""
