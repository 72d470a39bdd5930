"""The AWS stack, synthesised in-process and checked resource by resource."""

import dataclasses
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from deploy.app import build
from deploy.config import ENVIRONMENTS
from deploy.stack import APP_SECRETS, RDS_CA_BUNDLE
from services.settings import load_settings
from tests.deploy.test_container import DOCKERFILE

# The canonical tenant domain production is not recorded in deploy/config.py; ops pass it.
PRODUCTION_TENANT = "aai-prod.au.auth0.com"


def synth(name: str) -> Template:
    context = {"env": name, "imageTag": "abc123"}
    if name == "production":
        context["auth0Tenant"] = PRODUCTION_TENANT
    app = cdk.App(context=context)
    return Template.from_stack(build(app))


@pytest.fixture(scope="module")
def production() -> Template:
    return synth("production")


@pytest.fixture(scope="module")
def dev() -> Template:
    return synth("dev")


def resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {name: dict(body) for name, body in template.find_resources(kind).items()}


def container(template: Template, role: str) -> dict[str, Any]:
    for definition in resources(template, "AWS::ECS::TaskDefinition").values():
        for spec in definition["Properties"]["ContainerDefinitions"]:
            if spec["Name"] == role:
                return spec
    raise AssertionError(f"no {role} container")


class TestDatabase:
    def test_encrypted_backed_up_postgres_with_generated_credentials(self, production: Template):
        production.has_resource_properties(
            "AWS::RDS::DBInstance",
            {
                "Engine": "postgres",
                "StorageEncrypted": True,
                "BackupRetentionPeriod": 30,
                "MultiAZ": True,
                "DeletionProtection": True,
                "PubliclyAccessible": False,
            },
        )
        production.has_resource("AWS::RDS::DBInstance", {"DeletionPolicy": "Snapshot"})
        production.has_resource_properties(
            "AWS::SecretsManager::Secret", {"Name": "aai-backend/production/db"}
        )

    def test_only_the_tasks_reach_it(self, production: Template):
        rules = resources(production, "AWS::EC2::SecurityGroupIngress")
        postgres = [r for r in rules.values() if r["Properties"].get("FromPort") == 5432]
        assert len(postgres) == 1
        assert "SourceSecurityGroupId" in postgres[0]["Properties"]


class TestServices:
    def test_api_and_scheduler_from_one_image_and_a_migrate_task(self, production: Template):
        images = {
            str(container(production, role)["Image"]) for role in ("api", "scheduler", "migrate")
        }
        assert len(images) == 1
        assert "abc123" in images.pop()
        for role in ("api", "scheduler", "migrate"):
            assert container(production, role)["Command"] == [role]

    def test_api_behind_the_load_balancer_with_the_readiness_check(self, production: Template):
        production.has_resource_properties(
            "AWS::ElasticLoadBalancingV2::TargetGroup",
            {"HealthCheckPath": "/health/ready", "Port": 80, "TargetType": "ip"},
        )
        production.has_resource_properties(
            "AWS::ECS::Service",
            {
                "DesiredCount": 2,
                "LoadBalancers": [
                    Match.object_like({"ContainerName": "api", "ContainerPort": 8000})
                ],
            },
        )
        production.has_resource_properties(
            "AWS::ElasticLoadBalancingV2::ListenerRule",
            {
                "Conditions": [Match.object_like({"Field": "path-pattern"})],
                "Actions": [Match.object_like({"Type": "fixed-response"})],
            },
        )

    def test_exactly_one_scheduler_never_two_during_a_deploy(self, production: Template):
        services = resources(production, "AWS::ECS::Service")
        schedulers = [s for s in services.values() if "LoadBalancers" not in s["Properties"]]
        assert len(schedulers) == 1
        properties = schedulers[0]["Properties"]
        assert properties["DesiredCount"] == 1
        assert properties["DeploymentConfiguration"]["MaximumPercent"] == 100
        assert properties["DeploymentConfiguration"]["MinimumHealthyPercent"] == 0
        assert "ScalableTarget" not in str(properties)

    def test_api_scales_on_cpu_and_on_requests(self, production: Template):
        production.has_resource_properties(
            "AWS::ApplicationAutoScaling::ScalableTarget", {"MinCapacity": 2, "MaxCapacity": 10}
        )
        kinds = {
            p["Properties"]["TargetTrackingScalingPolicyConfiguration"][
                "PredefinedMetricSpecification"
            ]["PredefinedMetricType"]
            for p in resources(production, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
        }
        assert kinds == {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}

    def test_migration_runs_to_completion_before_the_services_move(self, production: Template):
        [migration_id] = resources(production, "Custom::AaiMigration")
        migration = resources(production, "Custom::AaiMigration")[migration_id]
        assert migration["Properties"]["Container"] == "migrate"
        for service in resources(production, "AWS::ECS::Service").values():
            assert migration_id in service.get("DependsOn", [])
        production.has_resource_properties(
            "AWS::Lambda::Function", {"Handler": "index.is_complete", "Runtime": "python3.12"}
        )

    def test_secrets_come_from_secrets_manager_never_plain_environment(self, production: Template):
        for role in ("api", "scheduler", "migrate"):
            spec = container(production, role)
            names = {s["Name"] for s in spec["Secrets"]}
            assert names == {"DB_PASSWORD", *APP_SECRETS}
            plain = {e["Name"] for e in spec["Environment"]}
            assert not plain & names
            assert {"DB_HOST", "ENVIRONMENT", "AUTH0_DOMAIN", "LOG_FORMAT"} <= plain

    def test_logs_go_to_retained_log_groups(self, production: Template):
        groups = resources(production, "AWS::Logs::LogGroup")
        named = {
            g["Properties"]["LogGroupName"]: g
            for g in groups.values()
            if "LogGroupName" in g["Properties"]
        }
        for role in ("api", "scheduler", "migrate"):
            group = named[f"/aai-backend/production/{role}"]
            assert group["Properties"]["RetentionInDays"] == 365


class TestAlarms:
    def test_alarms_on_5xx_failed_runs_and_a_missing_scheduler(self, production: Template):
        alarms = resources(production, "AWS::CloudWatch::Alarm")
        metrics = {a["Properties"].get("MetricName") for a in alarms.values()}
        assert {
            "HTTPCode_Target_5XX_Count",
            "HTTPCode_ELB_5XX_Count",
            "FailedSchedulerRuns-production",
            "RunningTaskCount",
        } <= metrics
        for alarm in alarms.values():
            assert alarm["Properties"]["AlarmActions"]
        production.has_resource_properties(
            "AWS::Logs::MetricFilter",
            {"FilterPattern": '{ ($.event = "job_finished") && ($.outcome = "failed") }'},
        )


class TestEnvironments:
    def test_each_environment_synthesises_with_its_own_sizes(
        self, dev: Template, production: Template
    ):
        dev.has_resource_properties(
            "AWS::RDS::DBInstance",
            {"MultiAZ": False, "DeletionProtection": False, "BackupRetentionPeriod": 7},
        )
        dev.has_resource_properties(
            "AWS::ApplicationAutoScaling::ScalableTarget", {"MinCapacity": 1, "MaxCapacity": 2}
        )
        assert container(dev, "api")["Environment"] != container(production, "api")["Environment"]
        assert set(ENVIRONMENTS) == {"dev", "staging", "production"}

    def test_staging_synthesises(self):
        template = synth("staging")
        template.resource_count_is("AWS::ECS::Service", 2)

    def test_production_needs_its_canonical_auth0_domain_given(self):
        with pytest.raises(SystemExit, match="auth0Tenant"):
            build(cdk.App(context={"env": "production"}))

    def test_the_management_api_domain_is_canonical_and_logins_use_the_custom_one(
        self, production: Template, dev: Template
    ):
        for template, tenant, login in (
            (production, PRODUCTION_TENANT, "login.aai.biocommons.org.au"),
            (dev, "dev-aai.au.auth0.com", "dev.login.aai.test.biocommons.org.au"),
        ):
            plain = {e["Name"]: e["Value"] for e in container(template, "api")["Environment"]}
            assert plain["AUTH0_DOMAIN"] == tenant
            assert plain["AUTH0_CUSTOM_DOMAIN"] == login

    @pytest.mark.parametrize("name", sorted(ENVIRONMENTS))
    def test_each_environments_settings_pass_the_services_own_checks(self, name: str):
        """What the containers get is what the service accepts at start (production's
        refusals included), the secrets standing in as the stack's Secrets Manager gives."""
        config = ENVIRONMENTS[name]
        if not config.auth0_tenant:
            config = dataclasses.replace(config, auth0_tenant=PRODUCTION_TENANT)
        plain = config.container_settings()
        stand_ins = {
            "DB_HOST": "db.internal:5432",
            "JWT_SECRET_KEY": "j" * 48,
            "AUTH0_MANAGEMENT_ID": "management-client",
            "AUTH0_MANAGEMENT_SECRET": "management-secret",
            "AUTH0_PASSWORD_CLIENT_ID": "password-client",
            "AUTH0_PASSWORD_CLIENT_SECRET": "password-secret",
            "AUTH0_ACTION_TOKEN_SECRET": "a" * 40,
            "RECAPTCHA_SECRET": "recaptcha",
            "ADMIN_CLIENT_ID": "dashboard-client",
            "ADMIN_CLIENT_SECRET": "dashboard-secret",
            "FORWARDED_ALLOW_IPS": "10.0.0.0/16",
        }
        values = {k.lower(): v for k, v in {**plain, **stand_ins}.items()}
        settings = load_settings(_env_file=None, **values)
        assert settings.auth0_base_url.endswith(".auth0.com")
        # Every process of the environment shares the tenant's buckets through Postgres.
        expected_plan = "enterprise" if name == "production" else "enterprise-nonprod"
        assert settings.auth0_plan == expected_plan

    def test_an_unknown_environment_is_refused(self):
        with pytest.raises(SystemExit, match="unknown env"):
            build(cdk.App(context={"env": "qa"}))


def test_only_the_vpc_is_believed_about_client_addresses(production: Template):
    """A client that writes its own X-Forwarded-For must not choose its address: the API
    believes the header only from the VPC (where the load balancer is)."""
    environment = {e["Name"]: e["Value"] for e in container(production, "api")["Environment"]}
    value = environment["FORWARDED_ALLOW_IPS"]
    assert value != "*"
    assert value["Fn::GetAtt"][1] == "CidrBlock"


def test_the_database_connection_verifies_the_rds_certificate(production: Template):
    for role in ("api", "scheduler", "migrate"):
        environment = {e["Name"]: e["Value"] for e in container(production, role)["Environment"]}
        assert environment["DB_SSLMODE"] == "verify-full"
        assert environment["DB_SSLROOTCERT"] == RDS_CA_BUNDLE
    # The image carries the bundle at that path.
    assert f"global-bundle.pem {RDS_CA_BUNDLE}" in DOCKERFILE
