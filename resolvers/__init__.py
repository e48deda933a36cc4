"""What the graph does, as plain async functions over a session and a viewer."""
