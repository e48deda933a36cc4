"""The non-GraphQL HTTP surface: one module per page or endpoint."""
