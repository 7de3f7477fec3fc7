"""The fault and hostile-input suite shares the rag tests' MiniLM and context builders."""

from tests.rag.conftest import embeddings, make_context  # noqa: F401 - fixtures
