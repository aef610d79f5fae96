"""Lambda function bodies (Powertools): parse the event, call the service, shape the reply.

``lambdas/<fn>/handler.py`` only re-exports ``lambda_handler`` from here (the CDK stack points at the shims).
Each function validates its own settings (``settings.py``) and builds its dependencies into an explicit
container (``container.py``) once per Lambda container; the local runner and tests build their own container
and hand it to ``handler_for``.
"""
