"""``python -m scaling`` is the ``scaling`` command."""

from scaling.cli import main

raise SystemExit(main())
