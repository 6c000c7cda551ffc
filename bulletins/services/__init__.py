"""Bulletin business logic, one module per concern (shared reads: `bulletins.selectors`):

- `attribution`: conversion events attributed to the last human click before them;
- `audience`: who a bulletin goes to, who is skipped and why, and each user's experiment arm;
- `content`: the items each user's email carries, and the rendered message;
- `demo`: the demo's bulletin, sent to every demo user, and its simulated readers;
- `erasure`: an erased user's bulletin rows deleted, their report counts and suppressions kept;
- `identity`: a visitor's widget clicks and conversions moved to the user they turn out to be;
- `platforms`: the platform adapter a bulletin sends through;
- `preview`: admin's preview of any user's email, and a test send of it;
- `reports`: the experiment report of a bulletin's and a website widget's arms, and its CSV;
- `runs`: a run from start to finish (prepare deliveries, claim, push, record, resume);
- `schedules`: a bulletin's django-celery-beat periodic task;
- `simulation`: simulated readers of a sent run, through the real tracking path;
- `tracking`: clicks, opens and unsubscribes from the public links.
"""
