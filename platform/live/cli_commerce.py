"""`live ledger check`, `live payouts run` and `live payments-sandbox`: the money commands."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from live.cli_types import port
from live.commerce.settings import PaymentsSettings


def payments_settings(url: str | None) -> PaymentsSettings:
    return PaymentsSettings(provider_url=url,
                            api_key=os.environ.get("LIVETWIN_PAYMENTS_API_KEY", "sk_test_livetwin"),
                            webhook_secret=os.environ.get("LIVETWIN_WEBHOOK_SECRET"))


def _store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=Path("data"),
                        help="directory of the embedded store (default ./data)")
    parser.add_argument("--database", default=None,
                        help="postgresql://... to use PostgreSQL instead of SQLite")


def add_commerce_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ledger = commands.add_parser("ledger", help="inspect the books",
                                 description="Verify the double-entry books.")
    ledger_commands = ledger.add_subparsers(dest="ledger_command", required=True, metavar="ACTION")
    check = ledger_commands.add_parser(
        "check", help="verify that every transaction balances and every cached balance is true",
        description="Exit 0 when every journal transaction sums to zero per currency, every cached "
                    "balance equals the sum of its entries and no wallet is negative; 1 otherwise.")
    _store_arguments(check)
    payouts = commands.add_parser("payouts", help="pay channels what they earned",
                                  description="Book channel earnings to payouts.")
    payout_commands = payouts.add_subparsers(dest="payouts_command", required=True, metavar="ACTION")
    run = payout_commands.add_parser(
        "run", help="book each channel's earnings up to the end of a month to payouts (idempotent)",
        description="Book what each channel earned up to the end of --period (UTC) to payouts. "
                    "Running it again for the same period books nothing new.")
    run.add_argument("--period", required=True, metavar="YYYY-MM", help="the month to pay out")
    _store_arguments(run)
    sandbox = commands.add_parser(
        "payments-sandbox", help="run the sandbox payment provider as its own process",
        description="A Stripe-shaped fake provider: test cards that succeed, decline, fail for "
                    "insufficient funds or settle later; signed webhooks delivered late, twice and "
                    "out of order, retried with backoff until acknowledged.")
    sandbox.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sandbox.add_argument("--port", type=port, default=8090, help="port (default 8090; 0 = any free port)")
    sandbox.add_argument("--webhook-url", default="http://127.0.0.1:8080/api/v1/payments/webhook",
                         help="where to deliver webhooks (default: a local `live serve`)")
    sandbox.add_argument("--max-delay", type=float, default=1.0, metavar="S",
                         help="deliver each webhook up to S seconds late (default 1)")
    sandbox.add_argument("--duplicate", type=float, default=0.3, metavar="P",
                         help="probability that a webhook is delivered twice (default 0.3)")
    sandbox.add_argument("--settle-after", type=float, default=2.0, metavar="S",
                         help="seconds before a pending test card settles (default 2)")
    sandbox.add_argument("--seed", type=int, default=None, help="seed of the delivery chaos")
    sandbox.add_argument("--duration", type=float, default=None, metavar="S",
                         help="stop after S seconds (default: run until interrupted)")


def run_commerce(args: argparse.Namespace) -> int:
    if args.command == "payments-sandbox":
        from live.commerce.sandbox_server import Chaos, run_sandbox

        secret = os.environ.get("LIVETWIN_WEBHOOK_SECRET")
        if not secret:
            print("live payments-sandbox: set LIVETWIN_WEBHOOK_SECRET (the platform needs the same one)",
                  file=sys.stderr)
            return 2
        chaos = Chaos(max_delay_s=args.max_delay, duplicate=args.duplicate, seed=args.seed)
        try:
            asyncio.run(run_sandbox(args.host, args.port, args.webhook_url, secret,
                                    os.environ.get("LIVETWIN_PAYMENTS_API_KEY", "sk_test_livetwin"),
                                    chaos, args.settle_after, args.duration))
        except KeyboardInterrupt:
            pass
        return 0
    from live.commerce.cli import ledger_check, payouts_run

    if args.command == "ledger":
        return asyncio.run(ledger_check(args.database, args.data))
    return asyncio.run(payouts_run(args.database, args.data, args.period))
