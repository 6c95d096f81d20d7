"""python -m hivemind.engine.fused: build the fused pair kernel (a failed build is one line, exit 0)."""

from hivemind.engine.fused import main

raise SystemExit(main())
