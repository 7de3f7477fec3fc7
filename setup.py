"""What pyproject.toml cannot say: folders that install under another name.

- plugins/ (the built-in plugins) installs as the package `course_assistant_plugins`: the
  folder keeps its place in the repository, the installed name belongs to this project.
- The top-level knowledge/ and prompts/ folders ship in the wheel as assistant/_data/knowledge
  and assistant/_data/prompts (readers and the retrieval QA sets point at them where they are);
  assistant/resources.py finds them in either place.
Everything else is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

PLUGINS = "course_assistant_plugins"
SHIPPED_DATA = {
    "assistant._data.knowledge": "knowledge",
    "assistant._data.knowledge.qa": "knowledge/qa",
    "assistant._data.prompts": "prompts",
}
NO_CACHE = ["*__pycache__*"]

setup(
    packages=find_namespace_packages(include=["assistant*"], exclude=NO_CACHE)
    + [PLUGINS] + [f"{PLUGINS}.{name}" for name in find_namespace_packages(where="plugins", exclude=NO_CACHE)]
    + list(SHIPPED_DATA),
    package_dir={PLUGINS: "plugins", **SHIPPED_DATA},
)
