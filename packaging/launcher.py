"""Entry script of the frozen Scuba Steve (PyInstaller): the same as the `scubasteve` command."""

import multiprocessing

if __name__ == "__main__":
    # A frozen program re-runs itself for multiprocessing children (data loader workers);
    # freeze_support turns those runs into workers instead of second copies of the app.
    multiprocessing.freeze_support()
    from scubasteve.cli import main

    raise SystemExit(main())
