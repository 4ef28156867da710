from zhiku.cli.app import entry

raise SystemExit(entry())
