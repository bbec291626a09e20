"""Generated from protos/rating/v1/rating.proto by scripts/gen_protos.py."""
