"""Code generated from ``engine.proto`` by ``grpc_tools.protoc`` (``docs/grpc.md``)."""
