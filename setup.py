"""What pyproject.toml cannot say: the top-level knowledge/ and prompts/ folders ship in the wheel.

They stay where they are in the repository (readers and the retrieval QA sets
point at them) and install as assistant/_data/knowledge and assistant/_data/prompts;
assistant/resources.py finds them in either place. Everything else is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

SHIPPED_DATA = {
    "assistant._data.knowledge": "knowledge",
    "assistant._data.knowledge.qa": "knowledge/qa",
    "assistant._data.prompts": "prompts",
}

setup(
    packages=find_namespace_packages(include=["assistant*", "plugins*"], exclude=["*__pycache__*"]) + list(SHIPPED_DATA),
    package_dir=SHIPPED_DATA,
)
