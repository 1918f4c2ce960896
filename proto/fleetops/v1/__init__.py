"""Generated protobuf and gRPC modules for the fleetops.v1 wire contract."""
