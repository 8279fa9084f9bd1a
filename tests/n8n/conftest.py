"""The n8n tests run only under `make test-n8n` (which installs n8n and builds the
package first); `make test` skips this folder."""

from __future__ import annotations

import os

if os.environ.get("KABAR_N8N_TESTS") != "1":
    collect_ignore_glob = ["test_*.py"]
