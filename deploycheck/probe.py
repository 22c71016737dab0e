"""The container healthcheck for `web`: GET /healthz on this container, as the load balancer
would, with nothing but the standard library (the slim image has no curl).

`python -m deploycheck.probe [URL]` exits 0 when the app answers 200, else 1 with the reason.
The Host header is the first of ALLOWED_HOSTS, so a production host list does not turn the
probe into a 400; /healthz is exempt from the HTTPS redirect.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz"
    hosts = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip() and h.strip() != "*"]
    request = urllib.request.Request(url, headers={"Host": hosts[0].lstrip(".") if hosts else "localhost"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            if response.status == 200:
                return 0
            print(f"{url}: HTTP {response.status}", file=sys.stderr)
    except urllib.error.HTTPError as exc:
        print(f"{url}: HTTP {exc.code}", file=sys.stderr)
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
