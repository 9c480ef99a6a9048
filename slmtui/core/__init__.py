"""Torch-free facts that everything shares, each written once: errors, paths, atomic writes, seeds, model folders, specs."""
