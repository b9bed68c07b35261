from interpretgan.cli import main

raise SystemExit(main())
