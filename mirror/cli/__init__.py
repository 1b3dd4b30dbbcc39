"""The `dcmirror` subcommands of the mirror side: argument parsing and rendering only; the work happens in the other subpackages."""
