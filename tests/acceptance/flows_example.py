import time
from datetime import timedelta

from jobqueue.client import Client, chain, chord, job

to = ["a@example.com", "b@example.com"]
mails = [job("send-email", {"to": address, "subject": "Hi"}) for address in to]
with Client() as jobs:  # both e-mails side by side, then the report once both completed
    flow = jobs.create_flow(chord(mails, job("noop", {"report": "welcome mails"})))
    report = flow.member("2")  # a canvas numbers its jobs "0", "1", ... as written
    print(report.status, report.pending_parents)  # waiting 2
    while (flow := jobs.get_flow(flow.id)).status == "active":
        time.sleep(0.1)
    print(flow.status, flow.counts["completed"])  # completed 3
    sent = [m.result["delivered"] for m in flow.members if m.type == "send-email"]
    print(sent)  # ['outbox', 'outbox']

    later = timedelta(hours=1)
    first = job("send-email", {"to": "c@example.com", "subject": "Later"}, delay=later)
    steps = jobs.create_flow(chain(first, job("noop")))  # one after the other
    print(jobs.cancel_flow(steps.id).counts["cancelled"])  # 2
