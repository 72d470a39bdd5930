"""Per-environment parameters. Secrets are never here: they live in Secrets Manager
(the stack creates the secrets; ops put the values in)."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EnvConfig:
    name: str
    # Where CI pushes the image, and which tag this deployment runs.
    ecr_repository: str = "aai-backend"
    image_tag: str = "latest"
    # Network and database
    max_azs: int = 2
    nat_gateways: int = 1
    db_instance_class: str = "t4g.micro"
    db_allocated_storage_gb: int = 20
    db_multi_az: bool = False
    db_backup_days: int = 7
    db_deletion_protection: bool = False
    # API service
    api_cpu: int = 512
    api_memory_mib: int = 1024
    api_workers: int = 2
    api_min_tasks: int = 1
    api_max_tasks: int = 2
    api_cpu_target_percent: int = 60
    api_requests_per_target: int = 1000  # per task per minute, ALB's count
    # Scheduler (always exactly one task)
    scheduler_cpu: int = 512
    scheduler_memory_mib: int = 1024
    log_retention_days: int = 30
    certificate_arn: str | None = None  # HTTPS on the load balancer when set
    alarm_email: str | None = None
    # The Auth0 tenant's two domains (README "Tenant setup"): the canonical
    # `{tenant}.{region}.auth0.com`, the only one serving the Management API, and the custom
    # domain users log in at (the portal's `auth0.domain`), which issues their tokens.
    # None: not recorded here; `cdk synth -c auth0Tenant=...` must give it.
    auth0_tenant: str | None = None
    auth0_login_domain: str | None = None
    # Non-secret settings passed to both containers (see README "Configuration").
    settings: dict[str, str] = field(default_factory=dict)

    def container_settings(self) -> dict[str, str]:
        """`settings` with the Auth0 domains; refuses a missing canonical domain."""
        if not self.auth0_tenant:
            raise SystemExit(
                f"{self.name}: the canonical Auth0 tenant domain is not configured; pass it "
                f"with `cdk synth -c env={self.name} -c auth0Tenant=<tenant>.<region>.auth0.com`"
                " (Auth0 dashboard, Settings > Domain; not the custom login domain)"
            )
        domains = {"AUTH0_DOMAIN": self.auth0_tenant}
        if self.auth0_login_domain:
            domains["AUTH0_CUSTOM_DOMAIN"] = self.auth0_login_domain
        return {**self.settings, **domains}


# The same in every environment; each adds its own Auth0 tenant and audience.
SHARED_SETTINGS = {
    "ADMIN_ROLES": '["BiocommonsAdmin"]',
    "EMAIL_BACKEND": "ses",
    "SES_REGION": "ap-southeast-2",
    "ENABLE_ADMIN_DASHBOARD": "true",
    "ENABLE_PROMETHEUS_METRICS": "true",
}

ENVIRONMENTS: dict[str, EnvConfig] = {
    "dev": EnvConfig(
        name="dev",
        auth0_tenant="dev-aai.au.auth0.com",
        # The portal's default runtime config logs in here (portal-contract.md, §2).
        auth0_login_domain="dev.login.aai.test.biocommons.org.au",
        settings={
            **SHARED_SETTINGS,
            "ENVIRONMENT": "dev",
            "AUTH0_AUDIENCE": "https://dev.api.aai.biocommons.org.au",
            # Non-production tenants get the smaller bucket (README, Tenant setup).
            "AUTH0_PLAN": "enterprise-nonprod",
            # ENVIRONMENT=dev would otherwise allow only a local portal (localhost:4200).
            "CORS_ALLOWED_ORIGINS": "https://dev.portal.aai.test.biocommons.org.au",
        },
    ),
    "staging": EnvConfig(
        name="staging",
        api_min_tasks=2,
        api_max_tasks=4,
        db_instance_class="t4g.small",
        db_backup_days=14,
        auth0_tenant="staging-aai.au.auth0.com",
        settings={
            **SHARED_SETTINGS,
            "ENVIRONMENT": "staging",
            "AUTH0_AUDIENCE": "https://staging.api.aai.biocommons.org.au",
            "AUTH0_PLAN": "enterprise-nonprod",
        },
    ),
    "production": EnvConfig(
        name="production",
        nat_gateways=2,
        db_instance_class="m7g.large",
        db_allocated_storage_gb=100,
        db_multi_az=True,
        db_backup_days=30,
        db_deletion_protection=True,
        api_cpu=1024,
        api_memory_mib=2048,
        api_workers=4,
        api_min_tasks=2,
        api_max_tasks=10,
        log_retention_days=365,
        # login.aai.biocommons.org.au is the custom (login) domain, which the Management API
        # refuses ("Service not enabled within domain"); the canonical tenant domain is not
        # recorded in this repository and comes from `-c auth0Tenant=` at synth.
        auth0_login_domain="login.aai.biocommons.org.au",
        settings={
            **SHARED_SETTINGS,
            "ENVIRONMENT": "production",
            "AUTH0_AUDIENCE": "https://api.aai.biocommons.org.au",
            "AUTH0_PLAN": "enterprise",
        },
    ),
}
