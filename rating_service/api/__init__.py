"""The gRPC shell: servicer, proto <-> domain conversion, error mapping, server."""
