"""The app's screens (writer, stories, training, models) and their dialogs: each composes widgets, forwards keys to a
service, draws the service's state, and tells the app what to do with a typed message (``slmtui.tui.messages``)."""
