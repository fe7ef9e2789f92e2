"""A separate writer process for the multi-process and crash tests (run as a script, not collected)."""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

from imi.app import build_services
from kernel.settings import Settings


def main() -> None:
    url, data_dir, count, mode = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    services = build_services(Settings(database_url=url, data_dir=data_dir, public_url="http://testserver"))
    log = services.log
    done = 0
    chunk = 100 if mode == "append" else 25
    print("ready", flush=True)
    while done < count:
        n = min(chunk, count - done)
        pending = log.append_many([("notarization", secrets.token_bytes(32)) for _ in range(n)])
        if mode == "append":
            log.integrate_now()
        else:  # "ack": print a line only once the receipt is durable
            for r in log.wait_receipts(pending):
                print(json.dumps({"index": r.index, "commitment": r.commitment}), flush=True)
        done += n
    while log.integrate_now():
        pass


if __name__ == "__main__":
    main()
