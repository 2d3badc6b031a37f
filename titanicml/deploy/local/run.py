"""The background processes' entry: ``python -m titanicml.deploy.local.run router|instance``.

Started by :mod:`.processes`, never by hand: ``router --workspace W --endpoint E
--fd N`` serves an endpoint's router, ``instance --settings JSON --fd N [--fd M]``
one instance of a deployment, each on the listening sockets it inherited.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Run a router or an instance until SIGTERM; a user's mistake ends it with one line."""
    from titanicml.exceptions import TitanicMLError

    try:
        _run(argv)
    except TitanicMLError as exc:
        print(f"titanicml: error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def _run(argv: Sequence[str] | None) -> None:
    parser = argparse.ArgumentParser(prog="python -m titanicml.deploy.local.run")
    roles = parser.add_subparsers(dest="role", required=True)
    router = roles.add_parser("router", help="an endpoint's router")
    router.add_argument("--workspace", required=True)
    router.add_argument("--endpoint", required=True)
    router.add_argument("--fd", type=int, action="append", required=True, help="its socket")
    instance = roles.add_parser("instance", help="one instance of a deployment")
    instance.add_argument("--settings", required=True, help="InstanceSettings as JSON")
    instance.add_argument(
        "--fd", type=int, action="append", required=True, help="its sockets (TCP, then Unix)"
    )
    args = parser.parse_args(argv)
    if args.role == "router":
        from pathlib import Path

        from titanicml.deploy.local.router import run_router
        from titanicml.deploy.local.state import Paths

        run_router(Paths(Path(args.workspace), args.endpoint), args.fd[0])
    else:
        from titanicml.deploy.local.instance import InstanceSettings, run_instance

        run_instance(InstanceSettings.from_json(args.settings), args.fd)


if __name__ == "__main__":
    main()
