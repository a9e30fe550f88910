"""The app ``celery -A benchmarks.bare_worker worker`` serves: bare Celery, with the
Celery settings in ``BENCHMARK_CELERY_CONFIG`` (a JSON object) on top."""

from __future__ import annotations

import json
import os

from .bare import bare_app

CONFIG_VARIABLE = "BENCHMARK_CELERY_CONFIG"

app = bare_app(json.loads(os.environ.get(CONFIG_VARIABLE, "{}")))
