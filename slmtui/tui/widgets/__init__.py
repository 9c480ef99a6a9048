"""The writer's widgets, one per file: each holds one piece of the screen's state and posts messages up."""
