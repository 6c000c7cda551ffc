"""Bulletin business logic, one module per concern:

- `audience`: who a bulletin goes to, who is skipped and why, and each user's experiment arm;
- `content`: the items each user's email carries, and the rendered message;
- `runs`: a run from start to finish (prepare deliveries, claim, push, record, resume);
- `platforms`: the platform adapter a bulletin sends through;
- `schedules`: a bulletin's django-celery-beat periodic task;
- `tracking`: clicks, opens and unsubscribes from the public links.
"""
