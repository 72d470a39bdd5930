"""The custom resource behind `Migration` (deployed inline as a Lambda): run the
`migrate` task on Fargate, then report success only once it stopped with exit code 0.
CloudFormation does not move the services on until it has."""

import boto3

ecs = boto3.client("ecs")


def on_event(event, context):  # noqa: ARG001 - the Lambda handler shape
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId", "no-migration")}
    props = event["ResourceProperties"]
    started = ecs.run_task(
        cluster=props["Cluster"],
        taskDefinition=props["TaskDefinition"],
        launchType="FARGATE",
        count=1,
        startedBy="aai-migration",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": props["Subnets"],
                "securityGroups": props["SecurityGroups"],
                "assignPublicIp": "DISABLED",
            }
        },
    )
    if started.get("failures") or not started.get("tasks"):
        raise RuntimeError(f"the migration task did not start: {started.get('failures')}")
    return {"PhysicalResourceId": started["tasks"][0]["taskArn"]}


def is_complete(event, context):  # noqa: ARG001
    if event["RequestType"] == "Delete":
        return {"IsComplete": True}
    props = event["ResourceProperties"]
    arn = event["PhysicalResourceId"]
    task = ecs.describe_tasks(cluster=props["Cluster"], tasks=[arn])["tasks"][0]
    if task["lastStatus"] != "STOPPED":
        return {"IsComplete": False}
    codes = [c.get("exitCode") for c in task["containers"] if c["name"] == props["Container"]]
    if codes != [0]:
        raise RuntimeError(
            f"migration task {arn} failed: exit {codes}, {task.get('stoppedReason', '')}"
        )
    return {"IsComplete": True}
