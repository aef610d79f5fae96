"""Lambda function bodies (Powertools): parse the event, call the service, shape the reply.

The CDK stack points at one-line shims outside the package that only re-export ``lambda_handler`` from here.
Each function validates its own settings (``settings.py``) and builds its dependencies into an explicit
container (``container.py``) once per Lambda container; the local runner and tests build their own container
and hand it to ``handler_for``.
"""
