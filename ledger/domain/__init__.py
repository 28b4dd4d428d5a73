"""The domain: the recorded facts, the decisions and rules. Plain Python, no I/O."""
