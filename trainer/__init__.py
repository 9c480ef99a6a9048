"""slm-train: pretraining for slmtui models, headless (corpus -> BPE -> tokens -> training loop)."""
