"""The production settings (DEBUG off) with the stand-in upstream mounted, for the benchmarks.

Production refuses SANDBOX_ENABLED with DEBUG off; the benchmarks need both, as the tests do.
"""

import os

os.environ["SANDBOX_ENABLED"] = "0"

from aisa_site.settings import *  # noqa: F403

SANDBOX_ENABLED = True
INSTALLED_APPS.append("sandbox")  # noqa: F405
