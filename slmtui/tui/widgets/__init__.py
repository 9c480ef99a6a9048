"""The app's widgets, one per file: each draws one piece of a screen, takes attributes down and posts messages up."""
