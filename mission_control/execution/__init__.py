"""Execution: a worker firing one attempt of a run (the executor) and the run's state transitions
in the database, with retries, timeouts and lost attempts closed.
"""
