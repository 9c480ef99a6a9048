"""The Textual front end, and nothing else: the app, its screens, dialogs, widgets and .tcss styles.

Placement rule: what a screen shows lives in a service without Textual (``slmtui.writing``, ``slmtui.training``,
``slmtui.stories``, ``slmtui.settings``) or in the engine; this package composes widgets, routes messages and
draws. Nothing outside tui imports it.
"""
