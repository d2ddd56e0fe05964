"""The `farm` process: `python -m buildkit_farm` and the console script start here."""

import gc


def main() -> None:
    """Run the command line with the collector tuned for a short process."""
    # Starting typer and pydantic allocates so fast that the default threshold (700) runs
    # some eighty collections in one `farm validate`, each walking the young objects; at
    # 50,000 it runs a handful. Cycles are still collected in long commands such as `farm build`.
    gc.set_threshold(50_000, 20, 20)
    try:
        from buildkit_farm.cli import main as run

        run()
    finally:
        # At exit the collector walks every tracked object (tens of thousands after `farm
        # validate`) once more; frozen, they are skipped and freed with the process.
        gc.freeze()


if __name__ == "__main__":
    main()
