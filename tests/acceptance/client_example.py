import time

from jobqueue.client import Client, NotFoundError

with Client() as jobs:  # or Client("http://jobs.internal:3000", api_key="...")
    job = jobs.create("send-email", {"to": "user@example.com", "subject": "Welcome"})
    while (job := jobs.get(job.id)).status in ("pending", "processing"):
        time.sleep(0.1)
    print(job.status, job.attempts)  # completed 1
    print(jobs.stats().completed)  # 1
    for failed in jobs.iter_jobs(status="failed"):  # every page, newest first
        print(failed.id, failed.last_error)
    try:
        jobs.get("00000000-0000-0000-0000-000000000000")
    except NotFoundError as exc:
        print(exc.status, exc.message)  # 404 Job not found
