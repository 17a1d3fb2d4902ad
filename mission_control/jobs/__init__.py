"""Jobs: what a job is (its spec, schedule, retry policy, run states, slots) and where jobs and their
runs are kept (registry, history). The pure pieces import nothing of Flask, Celery or SQLAlchemy.
"""
