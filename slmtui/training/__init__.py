"""Training runs owned by the app, without Textual: the trainer subprocess, the state folded from its events,
and the plan (corpus size, time estimate) before a run starts."""
