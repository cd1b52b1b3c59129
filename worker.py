"""Start an RQ worker, with RQ's scheduler, for production: `python worker.py`.

It reads the same settings as every other Mailer command (MAILER_* environment variables or
instance/mailer.cfg). Run as many as you like, on as many machines as share the database and Redis.
"""

from mailer import create_app
from mailer.jobs import run_worker

if __name__ == "__main__":
    run_worker(create_app())
