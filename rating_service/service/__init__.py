"""The service layer: one module per family of use cases, each a function of a unit of work."""
