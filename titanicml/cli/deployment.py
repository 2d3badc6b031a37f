"""``titanicml online-deployment ...``: deployments of local endpoints, as ``az ml`` has them."""

from __future__ import annotations

import argparse
import sys

from titanicml.cli._args import workspace_option
from titanicml.cli.endpoint import DEFAULT_ENDPOINT, print_json
from titanicml.cli.monitor import add_capture_options


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add the ``online-deployment`` group to the CLI."""
    group = commands.add_parser(
        "online-deployment",
        help="deployments of local online endpoints: a model served in the background",
        description="Deployments of a local online endpoint, as Azure ML manages them: "
        "each serves one model with instance_count processes behind the endpoint's router. "
        "Create the endpoint first: titanicml online-endpoint create -f endpoint.yml.",
    )
    verbs = group.add_subparsers(dest="verb", metavar="VERB", required=True)

    create = verbs.add_parser(
        "create",
        help="start a deployment from deployment.yml and wait until it is ready",
        description="Start a deployment from deployment.yml (Azure ML's "
        "managedOnlineDeployment schema): the model reference (azureml:titanic-model@latest) "
        "is resolved to a version of the registry, instance_count server processes start in "
        "the background, and the command returns once their readiness probes answer. "
        "--overwrite replaces a deployment of that name without dropping a request.",
    )
    create.add_argument("--file", "-f", required=True, help="deployment.yml")
    _names(create, required=False)
    create.add_argument(
        "--all-traffic", action="store_true", help="send all the endpoint's traffic to it"
    )
    create.add_argument(
        "--overwrite", action="store_true", help="replace a deployment of the same name"
    )
    _store_options(create)
    add_capture_options(create)
    create.add_argument(
        "--target",
        choices=["local", "azure"],
        default="local",
        help="local (default): this machine; azure: the file's deployment on Azure ML",
    )
    create.add_argument(
        "--dry-run",
        action="store_true",
        help="with --target azure: only validate the file with azure-ai-ml's loader",
    )
    create.add_argument("--subscription", default=None, help="default: AZURE_SUBSCRIPTION_ID")
    create.add_argument("--resource-group", default=None, help="default: AZURE_RESOURCE_GROUP")
    create.add_argument(
        "--workspace-name", default=None, help="default: AZUREML_WORKSPACE_NAME or config.json"
    )
    create.set_defaults(handler=_create)

    update = verbs.add_parser(
        "update",
        help="roll a deployment out again: restart it, or change its model or settings",
        description="Start the deployment's instances anew, as recorded or from a new "
        "deployment.yml (-f), then stop the old ones: this restarts a crashed deployment, "
        "rolls out a new model version, or scales it (--instance-count), without dropping "
        "a request.",
    )
    _names(update, required=True)
    update.add_argument("--file", "-f", default=None, help="a new deployment.yml")
    update.add_argument(
        "--instance-count", type=int, default=None, help="number of server processes"
    )
    _store_options(update)
    update.set_defaults(handler=_update)

    listing = verbs.add_parser(
        "list",
        help="list an endpoint's deployments (JSON)",
        description="Print every deployment of a local endpoint with its state (JSON).",
    )
    listing.add_argument("--endpoint-name", "-e", default=DEFAULT_ENDPOINT, help="endpoint name")
    workspace_option(listing)
    listing.set_defaults(handler=_list)

    show = verbs.add_parser(
        "show",
        help="show a deployment: model, settings, instances and their state (JSON)",
        description="Print a deployment as az ml online-deployment show does; an "
        "instance whose process ended is Crashed and the deployment Failed, with the "
        "command that restarts it.",
    )
    _names(show, required=True)
    workspace_option(show)
    show.set_defaults(handler=_show)

    delete = verbs.add_parser(
        "delete",
        help="stop a deployment that takes no traffic and remove it",
        description="Stop the deployment's instances (each finishes its requests) and "
        "remove its record and logs. A deployment with traffic is refused: move its "
        "traffic first (online-endpoint update --traffic).",
    )
    _names(delete, required=True)
    delete.add_argument(
        "--yes", "-y", action="store_true", help="accepted for az ml compatibility; no prompt"
    )
    workspace_option(delete)
    delete.set_defaults(handler=_delete)

    logs = verbs.add_parser(
        "get-logs",
        help="print the console output of a deployment's instances",
        description="Print the last lines of each instance's console output (the model "
        "loading, errors, the server's messages).",
    )
    _names(logs, required=True)
    logs.add_argument("--lines", "-l", type=int, default=100, help="lines per instance")
    workspace_option(logs)
    logs.set_defaults(handler=_logs)


def _names(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument(
        "--name",
        "-n",
        required=required,
        default=None,
        help="deployment name" + ("" if required else " (overrides the file's)"),
    )
    parser.add_argument(
        "--endpoint-name",
        "-e",
        default=None if not required else DEFAULT_ENDPOINT,
        help="endpoint name"
        + (" (overrides the file's)" if not required else f" (default {DEFAULT_ENDPOINT})"),
    )


def _store_options(parser: argparse.ArgumentParser) -> None:
    workspace_option(parser)
    parser.add_argument("--tracking-uri", default=None, help="MLflow store of the registered model")


def _step(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _create(args: argparse.Namespace) -> int:
    if args.target == "azure":
        return _create_on_azure(args)
    from titanicml.deploy.local.deployments import create_deployment, show_deployment

    record = create_deployment(
        args.file,
        all_traffic=args.all_traffic,
        overwrite=args.overwrite,
        name=args.name,
        endpoint_name=args.endpoint_name,
        workspace=args.workspace,
        tracking_uri=args.tracking_uri,
        on_step=_step,
        retention_days=args.retention_days,
        sampling_rate=args.sampling_rate,
    )
    print_json(show_deployment(record.name, record.endpoint_name, args.workspace))
    return 0


def _create_on_azure(args: argparse.Namespace) -> int:
    from titanicml.cli.endpoint import azure_workspace, report_file
    from titanicml.deploy.azure import create_online_deployment_from_file

    entity = create_online_deployment_from_file(
        args.file,
        args.name,
        args.endpoint_name,
        all_traffic=args.all_traffic,
        dry_run=args.dry_run,
        workspace=azure_workspace(args),
        on_step=_step,
    )
    report_file(entity, "online deployment", args.dry_run)
    return 0


def _update(args: argparse.Namespace) -> int:
    from titanicml.deploy.local.deployments import show_deployment, update_deployment

    record = update_deployment(
        args.name,
        args.endpoint_name,
        file=args.file,
        instance_count=args.instance_count,
        workspace=args.workspace,
        tracking_uri=args.tracking_uri,
        on_step=_step,
    )
    print_json(show_deployment(record.name, record.endpoint_name, args.workspace))
    return 0


def _list(args: argparse.Namespace) -> int:
    from titanicml.deploy.local.deployments import list_deployments

    print_json(list_deployments(args.endpoint_name, args.workspace))
    return 0


def _show(args: argparse.Namespace) -> int:
    from titanicml.deploy.local.deployments import show_deployment

    print_json(show_deployment(args.name, args.endpoint_name, args.workspace))
    return 0


def _delete(args: argparse.Namespace) -> int:
    from titanicml.deploy.local.deployments import delete_deployment

    delete_deployment(args.name, args.endpoint_name, args.workspace)
    print(f"deployment {args.name} of {args.endpoint_name} deleted", file=sys.stderr)
    return 0


def _logs(args: argparse.Namespace) -> int:
    from titanicml.deploy.local.deployments import deployment_logs

    print(deployment_logs(args.name, args.endpoint_name, max(args.lines, 1), args.workspace))
    return 0
