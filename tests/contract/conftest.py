"""The google-genai contract tests need google-genai (Python >= 3.11); the others always run."""

from sdk_support import HAS_GENAI

collect_ignore = [] if HAS_GENAI else ["test_google_genai_hooks.py"]
