from zhiku.cli.app import main

raise SystemExit(main())
