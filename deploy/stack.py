"""One environment of aai-backend on AWS: one image, two ECS Fargate services and a
one-off migration task, sharing one RDS Postgres.

- VPC over two AZs: load balancer in public subnets, tasks in private subnets with
  egress (Auth0, SES), the database in isolated subnets reachable only from the tasks.
- RDS PostgreSQL 15: encrypted, automated backups, credentials generated into Secrets
  Manager; Multi-AZ and deletion protection in production.
- Secrets Manager also holds the application's secrets (Auth0 management secret, session
  and Action token keys, reCAPTCHA, dashboard client secret, the stream inboxes' tokens):
  created empty, filled by ops; the service refuses to start in production while any it
  needs is empty (the stream tokens may stay empty: those inboxes are then off).
- The Auth0 stream inboxes (/events/auth0/*) are served through the load balancer like
  every API route: Auth0 posts to them from the internet.
- api: behind an ALB (health check /health/ready, /metrics not routed), autoscaling on
  CPU and on requests per task. scheduler: exactly one task, no load balancer, never two
  during a deployment. migrate: run to completion by a custom resource before either
  service moves to a new task definition, so no new code meets an old schema.
- Logs in CloudWatch (JSON lines), alarms on 5xx, on failed scheduler runs and on a
  missing scheduler task, to an SNS topic.
"""

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import (
    aws_certificatemanager as acm,
)
from aws_cdk import (
    aws_cloudwatch as cloudwatch,
)
from aws_cdk import (
    aws_cloudwatch_actions as cloudwatch_actions,
)
from aws_cdk import (
    aws_ec2 as ec2,
)
from aws_cdk import (
    aws_ecr as ecr,
)
from aws_cdk import (
    aws_ecs as ecs,
)
from aws_cdk import (
    aws_ecs_patterns as ecs_patterns,
)
from aws_cdk import (
    aws_elasticloadbalancingv2 as elbv2,
)
from aws_cdk import (
    aws_iam as iam,
)
from aws_cdk import (
    aws_lambda as lambda_,
)
from aws_cdk import (
    aws_logs as logs,
)
from aws_cdk import (
    aws_rds as rds,
)
from aws_cdk import (
    aws_secretsmanager as secretsmanager,
)
from aws_cdk import (
    aws_sns as sns,
)
from aws_cdk import (
    aws_sns_subscriptions as subscriptions,
)
from aws_cdk import (
    custom_resources as cr,
)
from constructs import Construct

from deploy.config import EnvConfig

APP_SECRETS = (
    "AUTH0_MANAGEMENT_ID",
    "AUTH0_MANAGEMENT_SECRET",
    "AUTH0_PASSWORD_CLIENT_ID",
    "AUTH0_PASSWORD_CLIENT_SECRET",
    "JWT_SECRET_KEY",
    "AUTH0_ACTION_TOKEN_SECRET",
    "RECAPTCHA_SECRET",
    "ADMIN_CLIENT_ID",
    "ADMIN_CLIENT_SECRET",
    # The inboxes of Auth0's Event Streams and Log Stream (README "Event and Log Streams"):
    # the bearer tokens the streams send. Left empty, the inbox is off and polling alone
    # keeps Postgres in step.
    "EVENTS_STREAM_SECRET",
    "LOG_STREAM_SECRET",
)
MIGRATION_RUNNER = Path(__file__).with_name("migration_runner.py")
PORT = 8000
RDS_CA_BUNDLE = "/etc/ssl/rds/global-bundle.pem"


class AaiBackendStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, config: EnvConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        cdk.Tags.of(self).add("service", "aai-backend")
        cdk.Tags.of(self).add("environment", config.name)
        self.production = config.name == "production"

        self._network()
        self._database()
        self._tasks()
        self._migration()
        self._api()
        self._scheduler()
        self._alarms()
        self._outputs()

    def _network(self) -> None:
        """The VPC and the two security groups: tasks, and the database only they reach."""
        config = self.config
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=config.max_azs,
            nat_gateways=config.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC),
                ec2.SubnetConfiguration(name="app", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
                ec2.SubnetConfiguration(name="db", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            ],
        )
        self.tasks_sg = ec2.SecurityGroup(
            self, "TasksSg", vpc=self.vpc, description="aai-backend tasks"
        )
        self.db_sg = ec2.SecurityGroup(
            self, "DbSg", vpc=self.vpc, description="aai-backend database"
        )
        self.db_sg.add_ingress_rule(
            self.tasks_sg, ec2.Port.tcp(5432), "Postgres from the tasks only"
        )

    def _database(self) -> None:
        """Postgres (encrypted, TLS-only clients) and the application's secret."""
        config = self.config
        self.database = rds.DatabaseInstance(
            self,
            "Database",
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_15),
            instance_type=ec2.InstanceType(config.db_instance_class),
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[self.db_sg],
            database_name="aai",
            credentials=rds.Credentials.from_generated_secret(
                "aai", secret_name=f"aai-backend/{config.name}/db"
            ),
            allocated_storage=config.db_allocated_storage_gb,
            max_allocated_storage=config.db_allocated_storage_gb * 4,
            storage_encrypted=True,
            multi_az=config.db_multi_az,
            backup_retention=cdk.Duration.days(config.db_backup_days),
            deletion_protection=config.db_deletion_protection,
            removal_policy=cdk.RemovalPolicy.SNAPSHOT
            if self.production
            else cdk.RemovalPolicy.DESTROY,
            auto_minor_version_upgrade=True,
            enable_performance_insights=self.production,
            cloudwatch_logs_exports=["postgresql"],
        )
        assert self.database.secret is not None
        self.app_secret = secretsmanager.Secret(
            self,
            "AppSecrets",
            secret_name=f"aai-backend/{config.name}/app",
            description="aai-backend application secrets: fill every key before the first deploy",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps(
                    {key: "" for key in APP_SECRETS if key != "JWT_SECRET_KEY"}
                ),
                generate_string_key="JWT_SECRET_KEY",
                password_length=64,
                exclude_punctuation=True,
            ),
        )

    def _tasks(self) -> None:
        """The cluster and one task definition per role (api, scheduler, migrate)."""
        config = self.config
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=self.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        repository = ecr.Repository.from_repository_name(self, "Repository", config.ecr_repository)
        image = ecs.ContainerImage.from_ecr_repository(repository, config.image_tag)
        environment = {
            **config.container_settings(),
            "DB_HOST": self.database.db_instance_endpoint_address,
            "DB_PORT": self.database.db_instance_endpoint_port,
            "DB_NAME": "aai",
            "DB_USER": "aai",
            "LOG_FORMAT": "json",
            # Only the load balancer (inside the VPC) is believed about the client address.
            "FORWARDED_ALLOW_IPS": self.vpc.vpc_cidr_block,
            # TLS to the database, its certificate and host name checked against the RDS
            # CA bundle the image carries (Dockerfile).
            "DB_SSLMODE": "verify-full",
            "DB_SSLROOTCERT": RDS_CA_BUNDLE,
        }
        secrets = {
            "DB_PASSWORD": ecs.Secret.from_secrets_manager(self.database.secret, "password"),
            **{key: ecs.Secret.from_secrets_manager(self.app_secret, key) for key in APP_SECRETS},
        }
        self.log_groups: dict[str, logs.LogGroup] = {}

        def task(
            role: str, cpu: int, memory: int, extra_env: dict[str, str] | None = None
        ) -> ecs.FargateTaskDefinition:
            definition = ecs.FargateTaskDefinition(
                self,
                f"{role.title()}Task",
                cpu=cpu,
                memory_limit_mib=memory,
                runtime_platform=ecs.RuntimePlatform(
                    cpu_architecture=ecs.CpuArchitecture.X86_64,
                    operating_system_family=ecs.OperatingSystemFamily.LINUX,
                ),
            )
            log_group = logs.LogGroup(
                self,
                f"{role.title()}Logs",
                log_group_name=f"/aai-backend/{config.name}/{role}",
                retention=_retention(config.log_retention_days),
                removal_policy=cdk.RemovalPolicy.RETAIN
                if self.production
                else cdk.RemovalPolicy.DESTROY,
            )
            self.log_groups[role] = log_group
            container = definition.add_container(
                role,
                container_name=role,
                image=image,
                command=[role],
                environment={**environment, **(extra_env or {})},
                secrets=secrets,
                logging=ecs.LogDrivers.aws_logs(stream_prefix=role, log_group=log_group),
                stop_timeout=cdk.Duration.seconds(40),
                essential=True,
            )
            if role == "api":
                container.add_port_mappings(ecs.PortMapping(container_port=PORT))
            ses_send = iam.PolicyStatement(
                actions=["ses:SendEmail", "ses:SendRawEmail"], resources=["*"]
            )
            definition.add_to_task_role_policy(ses_send)
            return definition

        self.api_task = task(
            "api",
            config.api_cpu,
            config.api_memory_mib,
            {"WEB_CONCURRENCY": str(config.api_workers), "PORT": str(PORT)},
        )
        self.scheduler_task = task("scheduler", config.scheduler_cpu, config.scheduler_memory_mib)
        self.migrate_task = task("migrate", 256, 512)

    def _migration(self) -> None:
        """Migrations run by a custom resource before any new task starts."""
        private = self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        runner_role = iam.Role(
            self,
            "MigrationRunnerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AWSLambdaBasicExecutionRole"
                )
            ],
        )
        runner_role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecs:RunTask"], resources=[self.migrate_task.task_definition_arn]
            )
        )
        runner_role.add_to_policy(
            iam.PolicyStatement(actions=["ecs:DescribeTasks"], resources=["*"])
        )
        runner_role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[
                    self.migrate_task.task_role.role_arn,
                    self.migrate_task.obtain_execution_role().role_arn,
                ],
            )
        )
        code = lambda_.Code.from_inline(MIGRATION_RUNNER.read_text())
        on_event, is_complete = (
            lambda_.Function(
                self,
                name,
                runtime=lambda_.Runtime.PYTHON_3_12,
                handler=f"index.{handler}",
                code=code,
                role=runner_role,
                timeout=cdk.Duration.minutes(1),
            )
            for name, handler in (("MigrationStart", "on_event"), ("MigrationCheck", "is_complete"))
        )
        provider = cr.Provider(
            self,
            "MigrationProvider",
            on_event_handler=on_event,
            is_complete_handler=is_complete,
            query_interval=cdk.Duration.seconds(10),
            total_timeout=cdk.Duration.minutes(30),
        )
        self.migration = cdk.CustomResource(
            self,
            "Migration",
            service_token=provider.service_token,
            resource_type="Custom::AaiMigration",
            properties={
                "Cluster": self.cluster.cluster_name,
                # A new image means a new task definition revision: the migration runs again.
                "TaskDefinition": self.migrate_task.task_definition_arn,
                "Subnets": private.subnet_ids,
                "SecurityGroups": [self.tasks_sg.security_group_id],
                "Container": "migrate",
            },
        )
        self.migration.node.add_dependency(self.database)

    def _api(self) -> None:
        """The API behind a load balancer, scaled on CPU."""
        config = self.config
        self.certificate = certificate = (
            acm.Certificate.from_certificate_arn(self, "Certificate", config.certificate_arn)
            if config.certificate_arn
            else None
        )
        self.api = ecs_patterns.ApplicationLoadBalancedFargateService(
            self,
            "Api",
            cluster=self.cluster,
            task_definition=self.api_task,
            desired_count=config.api_min_tasks,
            security_groups=[self.tasks_sg],
            task_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            public_load_balancer=True,
            certificate=certificate,
            redirect_http=certificate is not None,
            protocol=elbv2.ApplicationProtocol.HTTPS
            if certificate
            else elbv2.ApplicationProtocol.HTTP,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            health_check_grace_period=cdk.Duration.seconds(60),
            min_healthy_percent=100,
        )
        self.api.target_group.configure_health_check(
            path="/health/ready",
            healthy_http_codes="200",
            interval=cdk.Duration.seconds(15),
            timeout=cdk.Duration.seconds(5),
            healthy_threshold_count=2,
            unhealthy_threshold_count=3,
        )
        self.api.target_group.set_attribute("deregistration_delay.timeout_seconds", "30")
        # Prometheus scrapes tasks inside the VPC; the internet gets nothing there.
        self.api.listener.add_action(
            "NoPublicMetrics",
            priority=10,
            conditions=[elbv2.ListenerCondition.path_patterns(["/metrics", "/metrics/*"])],
            action=elbv2.ListenerAction.fixed_response(
                404, content_type="text/plain", message_body="Not Found"
            ),
        )
        scaling = self.api.service.auto_scale_task_count(
            min_capacity=config.api_min_tasks, max_capacity=config.api_max_tasks
        )
        scaling.scale_on_cpu_utilization(
            "Cpu", target_utilization_percent=config.api_cpu_target_percent
        )
        scaling.scale_on_request_count(
            "Requests",
            requests_per_target=config.api_requests_per_target,
            target_group=self.api.target_group,
        )
        self.api.service.node.add_dependency(self.migration)

    def _scheduler(self) -> None:
        """One scheduler task."""
        self.scheduler = ecs.FargateService(
            self,
            "Scheduler",
            cluster=self.cluster,
            task_definition=self.scheduler_task,
            desired_count=1,
            # Stop the old scheduler before starting the new one.
            min_healthy_percent=0,
            max_healthy_percent=100,
            security_groups=[self.tasks_sg],
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
        )
        self.scheduler.node.add_dependency(self.migration)

    def _alarms(self) -> None:
        """Alarms on 5xx, failed runs and a silent scheduler, to an SNS topic."""
        config = self.config
        topic = sns.Topic(self, "Alarms", display_name=f"aai-backend {config.name} alarms")
        if config.alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        notify = cloudwatch_actions.SnsAction(topic)
        alarms = [
            cloudwatch.Alarm(
                self,
                "Api5xx",
                alarm_description="The API answered 5xx (a 500 is a bug; 502/503 mean a dependency is down)",
                metric=self.api.load_balancer.metrics.http_code_target(
                    elbv2.HttpCodeTarget.TARGET_5XX_COUNT,
                    period=cdk.Duration.minutes(5),
                    statistic="Sum",
                ),
                threshold=5,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self,
                "LoadBalancer5xx",
                alarm_description="The load balancer answered 5xx itself (no healthy API task?)",
                metric=self.api.load_balancer.metrics.http_code_elb(
                    elbv2.HttpCodeElb.ELB_5XX_COUNT, period=cdk.Duration.minutes(5), statistic="Sum"
                ),
                threshold=5,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]
        failed_runs = logs.MetricFilter(
            self,
            "FailedSchedulerRuns",
            log_group=self.log_groups["scheduler"],
            metric_namespace="AaiBackend",
            metric_name=f"FailedSchedulerRuns-{config.name}",
            filter_pattern=logs.FilterPattern.all(
                logs.FilterPattern.string_value("$.event", "=", "job_finished"),
                logs.FilterPattern.string_value("$.outcome", "=", "failed"),
            ),
            metric_value="1",
            default_value=0,
        )
        alarms.append(
            cloudwatch.Alarm(
                self,
                "SchedulerRunFailed",
                alarm_description="A scheduler job run failed; see /admin/sync-runs or the scheduler logs",
                metric=failed_runs.metric(period=cdk.Duration.minutes(15), statistic="Sum"),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )
        alarms.append(
            cloudwatch.Alarm(
                self,
                "SchedulerNotRunning",
                alarm_description="No scheduler task is running: sync, outbox and email stop",
                metric=cloudwatch.Metric(
                    namespace="ECS/ContainerInsights",
                    metric_name="RunningTaskCount",
                    dimensions_map={
                        "ClusterName": self.cluster.cluster_name,
                        "ServiceName": self.scheduler.service_name,
                    },
                    period=cdk.Duration.minutes(5),
                    statistic="Minimum",
                ),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=3,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            )
        )
        for alarm in alarms:
            alarm.add_alarm_action(notify)

    def _outputs(self) -> None:
        """What the deploy prints: the API URL, the database endpoint, the secret to fill."""
        cdk.CfnOutput(
            self,
            "ApiUrl",
            value=f"{'https' if self.certificate else 'http'}://{self.api.load_balancer.load_balancer_dns_name}",
        )
        cdk.CfnOutput(self, "DatabaseEndpoint", value=self.database.db_instance_endpoint_address)
        cdk.CfnOutput(self, "AppSecretArn", value=self.app_secret.secret_arn)


def _retention(days: int) -> logs.RetentionDays:
    """The nearest CloudWatch retention at or above `days` (up to a year)."""
    choices = [
        (7, logs.RetentionDays.ONE_WEEK),
        (14, logs.RetentionDays.TWO_WEEKS),
        (30, logs.RetentionDays.ONE_MONTH),
        (90, logs.RetentionDays.THREE_MONTHS),
        (180, logs.RetentionDays.SIX_MONTHS),
        (365, logs.RetentionDays.ONE_YEAR),
    ]
    return next((value for limit, value in choices if limit >= days), choices[-1][1])
