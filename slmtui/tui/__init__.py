"""The Textual front end: the writer, the stories screen and their widgets. Nothing outside tui imports it."""
