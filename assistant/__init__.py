"""Course assistant: an offline, plugin-based study assistant for a Generative-AI course.

Public API for plugin authors, re-exported explicitly.
"""

__version__ = "0.1.0"

from assistant.cancel import Cancelled, CancelToken
from assistant.events import Data, Error, Event, Image, Notice, Progress, Source, Sources, Text
from assistant.plugin import Command, Context, Plugin, Request

__all__ = [
    "__version__",
    "Cancelled",
    "CancelToken",
    "Command",
    "Context",
    "Data",
    "Error",
    "Event",
    "Image",
    "Notice",
    "Plugin",
    "Progress",
    "Request",
    "Source",
    "Sources",
    "Text",
]
