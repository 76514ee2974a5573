"""OrderChain objects checked against ``tastytrade`` 11.0.5, the last SDK release with a model.

``tastytrade`` 13.x logs OrderChain notifications as unknown and drops them,
so the simulator's OrderChain is held to the 11.0.5 model shape. Run in that
SDK's venv: reads a JSON array of OrderChain ``data`` objects on stdin and
prints one JSON report.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import tastytrade
from pydantic import ValidationError
from tastytrade.order import OrderChain


def main() -> dict[str, Any]:
    chains = json.loads(sys.stdin.read())
    errors: list[str] = []
    validated = 0
    for data in chains:
        try:
            OrderChain(**data)
        except ValidationError as exc:
            errors.append(str(exc)[:600])
        else:
            validated += 1
    return {"sdk": f"tastytrade {tastytrade.VERSION}", "validated": validated, "errors": errors}


if __name__ == "__main__":
    print(json.dumps(main()))
