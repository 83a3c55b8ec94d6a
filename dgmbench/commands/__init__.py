"""One module per ``dgmbench`` sub-command; each defines ``add_parser(subparsers)``."""
