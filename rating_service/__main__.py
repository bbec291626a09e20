"""``python -m rating_service`` is the ``rating-service`` command."""

from rating_service.cli import main

raise SystemExit(main())
