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
    # Non-secret settings passed to both containers (see README "Configuration").
    settings: dict[str, str] = field(default_factory=dict)


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
        settings={
            **SHARED_SETTINGS,
            "ENVIRONMENT": "dev",
            "AUTH0_DOMAIN": "dev-aai.au.auth0.com",
            "AUTH0_AUDIENCE": "https://dev.api.aai.biocommons.org.au",
        },
    ),
    "staging": EnvConfig(
        name="staging",
        api_min_tasks=2,
        api_max_tasks=4,
        db_instance_class="t4g.small",
        db_backup_days=14,
        settings={
            **SHARED_SETTINGS,
            "ENVIRONMENT": "staging",
            "AUTH0_DOMAIN": "staging-aai.au.auth0.com",
            "AUTH0_AUDIENCE": "https://staging.api.aai.biocommons.org.au",
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
        settings={
            **SHARED_SETTINGS,
            "ENVIRONMENT": "production",
            "AUTH0_DOMAIN": "login.aai.biocommons.org.au",
            "AUTH0_AUDIENCE": "https://api.aai.biocommons.org.au",
        },
    ),
}
