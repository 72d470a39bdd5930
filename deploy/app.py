"""`cdk synth -c env=dev|staging|production [-c imageTag=...] [-c auth0Tenant=...]`
(see deploy/cdk.json). `auth0Tenant`: the canonical Auth0 domain, required where
deploy/config.py does not record it (production)."""

import dataclasses
import os

import aws_cdk as cdk

from deploy.config import ENVIRONMENTS
from deploy.stack import AaiBackendStack


def build(app: cdk.App) -> AaiBackendStack:
    name = app.node.try_get_context("env") or "dev"
    if name not in ENVIRONMENTS:
        raise SystemExit(f"unknown env {name!r}; one of {', '.join(ENVIRONMENTS)}")
    config = ENVIRONMENTS[name]
    tag = app.node.try_get_context("imageTag")
    if tag:
        config = dataclasses.replace(config, image_tag=tag)
    tenant = app.node.try_get_context("auth0Tenant")
    if tenant:
        config = dataclasses.replace(config, auth0_tenant=tenant)
    return AaiBackendStack(
        app,
        f"AaiBackend-{name}",
        config,
        env=cdk.Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=os.environ.get("CDK_DEFAULT_REGION", "ap-southeast-2"),
        ),
    )


if __name__ == "__main__":
    application = cdk.App()
    build(application)
    application.synth()
