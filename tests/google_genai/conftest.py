"""google-genai 3.x needs Python >= 3.11: without it installed, this folder has nothing to test."""

from sdk_support import HAS_GENAI

collect_ignore_glob = [] if HAS_GENAI else ["test_*.py"]
