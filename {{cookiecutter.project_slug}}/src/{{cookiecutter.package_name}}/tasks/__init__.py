"""Tasks, one module per domain. ``typed`` holds the machinery they share."""
