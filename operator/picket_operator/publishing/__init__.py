"""Publishing the compiled state: the compiler intake, the object builders, the diff ledger, the writer,
Events for bad input and the leader election that decides who writes.
"""
