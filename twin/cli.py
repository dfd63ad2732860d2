"""`twin`: the digital twin's command line."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="twin", description=__doc__).parse_args(argv)
    return 0
