"""The rules of money, as pure functions over values: no I/O, no clock, no database, no gRPC."""
