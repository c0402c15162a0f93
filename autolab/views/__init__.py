"""Read-only views of a workspace's ledger: event lines and a session's state as a job.

Views only read the ledger (autolab.track.ledger); none scrapes logs or run directories.
"""
