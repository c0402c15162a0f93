"""One module per `autolab` subcommand; each has `register(subparsers)`."""
