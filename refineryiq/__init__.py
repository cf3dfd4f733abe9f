"""The command line: `refineryiq run|simulate|check-config|migrate|train|report|user`.

The top of the house: it composes the gateway daemon, the simulator and the training tool,
which never import one another.
"""
