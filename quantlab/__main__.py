"""``python -m quantlab``: the same verbs as the ``quantlab`` console script."""

from quantlab.cli import main

raise SystemExit(main())
