"""The paper's two claims run end to end: path independence (``paths``: one scenario under
several update rules) and entropy collapse (``entropy``: an ensemble at every entanglement)."""
