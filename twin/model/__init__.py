"""The model: one module per platform component it mirrors, wired into one SimPy run by `twin.Twin`."""
