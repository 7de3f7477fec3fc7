"""The chat application: one prompt, a conversation, sources, progress, status.

Each input line goes through `assistant.router.dispatch` in a worker thread.
The worker appends events to a queue; a timer on the event loop drains it
every 50 ms, so a fast stream of Text deltas or Progress events becomes one
update per frame and the UI never waits on a plugin (nor the plugin on the UI,
as it would with `call_from_thread`).

The worker is a daemon thread rather than a Textual thread worker: those run
in asyncio's default executor, which the app joins on exit, so quitting during
a step that does not yield (loading a model) would hang the terminal until the
step ended. A daemon thread is simply dropped; the session is already saved.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import asdict
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, TextArea

from assistant.errors import one_line
from assistant.events import Control, Data, Error, Event, Image, Notice, Progress, Source, Sources, Text
from assistant.plugin import Context
from assistant.options import parse_flags
from assistant.router import LAST_ROUTE, MAX_INPUT_CHARS, dispatch, split_command
from assistant.sanitize import safe_url, sanitize
from assistant.tui.commands import ChatCommandsPlugin, code_blocks, parse_copy
from assistant.tui.palette import CommandsProvider
from assistant.warmup import WarmUp, loads_in_process
from assistant.tui.widgets import (
    CommandHints,
    ErrorLine,
    ImageBlock,
    MarkdownText,
    NoticeLine,
    ProgressPanel,
    PromptInput,
    Reply,
    SourceScreen,
    SourcesLine,
    DataLine,
    FindScreen,
    SourcesPanel,
    StatusLine,
    UserMessage,
    Welcome,
    shorten_for_display,
)

CHAT_COMMANDS = {c.name for c in ChatCommandsPlugin.commands}
# Messages of a resumed conversation drawn at start; older ones stay in /export.
RESUME_MESSAGES = 20
DRAIN_SECONDS = 0.05
QUIT_WINDOW_SECONDS = 3.0
_DONE = object()  # end-of-action marker in the event queue


class ChatApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "course assistant"
    ENABLE_COMMAND_PALETTE = True  # Ctrl+P: every command, searchable (assistant/tui/palette.py)
    COMMANDS = App.COMMANDS | {CommandsProvider}
    # Every binding has an id, so `[tui.keys]` in config.toml can rebind it (see docs/tui.md).
    BINDINGS = [
        Binding("escape", "cancel", "cancel", id="chat.cancel", priority=False),
        Binding("ctrl+c", "interrupt", "copy / cancel / quit", id="chat.interrupt", priority=True, show=False),
        Binding("ctrl+q", "quit", "quit", id="chat.quit", priority=True),
        Binding("f2", "toggle_sources", "sources", id="chat.sources"),
        Binding("pageup", "scroll_conversation(-1)", "scroll up", id="chat.scroll_up", show=False),
        Binding("pagedown", "scroll_conversation(1)", "scroll down", id="chat.scroll_down", show=False),
    ]

    def __init__(self, context: Context, warm_up: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.context = context
        registry = context.registry
        if registry is not None and ChatCommandsPlugin.name not in registry.plugins:
            registry.register(ChatCommandsPlugin)  # /copy, /retry, /find, /debug: listed like the others
        self._warm_up = warm_up  # load the LLM and the intent router in the background
        self._owns_store = False
        self._queue: deque = deque()
        self._lock = threading.Lock()
        self._reply: Reply | None = None
        self._busy = False  # a worker thread is running
        self._released = False  # ... but it was cancelled and the UI no longer waits for it
        self._pending: str | None = None  # a line typed meanwhile, run when the worker ends
        self._ui_lock = asyncio.Lock()  # event drawing and cancelling never interleave
        self._last_interrupt = 0.0
        self._line = ""
        self._startup_notices: list[str] = []
        self._initial_messages: list = []
        self._started = 0.0  # monotonic start of the running action
        self._shown_seconds = -1
        self.show_raw = False  # /debug: raw JSON of result payloads as well
        self._retry_of: Any = None  # the reply that the running /retry regenerates
        self._restore_backend: tuple | None = None  # /retry --model: (the override to go back to,)
        self.warmup: WarmUp | None = None  # the first run's background steps
        self._warm_queue: deque = deque()
        self._upgrade = False  # a reply was quoted while the model loaded: regenerate it when ready

    def notify(self, message: str, *, title: str = "", severity: str = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Toasts show text as written: exception text is never read as markup (`[/]` would crash it)."""
        super().notify(sanitize(str(message)), title=sanitize(title), severity=severity, timeout=timeout,
                       markup=False)

    def open_url(self, url: str, *, new_tab: bool = True) -> None:
        """Links in replies (clicked by the user) open only when they are http(s)."""
        if not safe_url(url):
            self.notify(f"link not opened: only http and https links open ({url[:80]})", severity="warning")
            return
        super().open_url(url, new_tab=new_tab)

    @property
    def busy(self) -> bool:
        """True while an action runs (its events may still be arriving)."""
        return self._busy

    # -- layout --------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        registry = self.context.registry
        commands = [(c.name, c.usage, c.help) for _, c in registry.commands()] if registry else []
        with Horizontal(id="main"):
            # Not focusable: Tab goes from the prompt straight to the sources list.
            yield VerticalScroll(id="conversation", can_focus=False)
            yield SourcesPanel(id="sources")
        with Vertical(id="bottom"):
            yield ProgressPanel(id="warmup")
            yield ProgressPanel(id="progress")
            yield CommandHints(sorted(commands), id="hints")
            yield PromptInput(
                [c[0] for c in commands],
                placeholder="Ask about the course, or type / for commands",
                id="prompt",
            )
            yield StatusLine(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self._apply_look()
        self._open_session()
        self.query_one("#sources").display = False
        self.query_one("#progress").display = False
        self.query_one("#warmup").display = False
        self.query_one("#hints").display = False
        self._refresh_status()
        self.query_one(PromptInput).focus()
        self._drain_timer = self.set_interval(DRAIN_SECONDS, self._drain, pause=True)
        # Draw the old conversation after the first frame so the prompt shows at once.
        self.call_after_refresh(self._show_first_session)
        if self._warm_up:
            # Started after the first frame (the prompt is usable while models load), or at once by a
            # question typed before that: the question must see the warm-up either way.
            self.warmup = WarmUp(self.context, report=self._warm_report)
            self.set_timer(0.5, self._start_warm_up)

    def _apply_look(self) -> None:
        """`[tui] theme` and `[tui.keys]` from config.toml; a bad value is a notice, never fatal."""
        config = self.context.config
        theme = str(config.get("tui.theme"))
        if theme:
            if theme in self.available_themes:
                self.theme = theme
            else:
                self._startup_notices.append(f"unknown theme {theme!r} in config.toml; choose one of "
                                             + ", ".join(sorted(self.available_themes)))
        # [tui.keys] in config.toml: action = "key" (unknown actions are reported with the config's other problems).
        ids = [b.id for b in [*self.BINDINGS, *PromptInput.BINDINGS] if getattr(b, "id", None)]
        keymap = {i: str(config.get(f"tui.keys.{i.split('.', 1)[1]}", "") or "") for i in ids}
        keymap = {i: keys for i, keys in keymap.items() if keys}
        if keymap:
            self.set_keymap(keymap)

    def _start_warm_up(self) -> None:
        if self.warmup is not None:
            self.warmup.start()
        self._warm_timer = self.set_interval(0.25, self._drain_warm_up)

    def _warm_report(self, event: Progress) -> None:
        with self._lock:
            self._warm_queue.append(event)

    async def _drain_warm_up(self) -> None:
        """Draw the warm-up's bars; when the model is ready, regenerate a reply quoted meanwhile."""
        with self._lock:
            items = list(self._warm_queue)
            self._warm_queue.clear()
        latest: dict[str, Progress] = {}
        for item in items:
            key = item.label.split(" · ")[0]
            if key in latest and not (item.total is not None and item.done >= item.total):
                latest.pop(key)
            latest[key] = item
        panel = self.query_one("#warmup", ProgressPanel)
        for item in latest.values():
            await panel.update_progress(item)
        warm = self.warmup
        if warm is None:
            return
        if self._upgrade and warm.llm_ready.is_set() and not self._busy:
            self._upgrade = False
            await self.query_one("#conversation").mount(
                NoticeLine("info", "the language model is ready: its answer follows (the quoted one stays in the session)"))
            try:
                await self._retry("")
            except ValueError as exc:
                self.notify(str(exc))
        if warm.thread is not None and not warm.thread.is_alive() and not self._warm_queue and not self._upgrade:
            self._warm_timer.stop()
            await panel.clear()

    # -- sessions ------------------------------------------------------------------
    def _open_session(self) -> None:
        if self.context.sessions is None:
            self.context.sessions = self._open_store()
            self._owns_store = True
        store = self.context.sessions
        if self.context.session_id is None or not store.exists(self.context.session_id):
            self.context.session_id = store.last_session() or store.new_session()
        self._initial_messages = store.messages(self.context.session_id)
        self._restore_route(self._initial_messages)

    def _restore_route(self, messages: list) -> None:
        """Follow-ups after a restart go to the plugin that answered last in this conversation."""
        route = next((m.meta.get("route") for m in reversed(messages) if m.role == "assistant"), None)
        if isinstance(route, list) and len(route) == 3:
            self.context.state[LAST_ROUTE] = tuple(route)
        else:
            self.context.state.pop(LAST_ROUTE, None)

    def _open_store(self):
        """The session store; an unreadable database is moved aside, never lost or fatal."""
        from assistant.sessions import open_sessions

        store, notice = open_sessions(self.context.config.sessions_db)
        if notice:
            self._startup_notices.append(notice)
        return store

    async def _show_first_session(self) -> None:
        await self._show_session(first=True)

    async def _show_session(self, first: bool = False, focus: int | None = None) -> None:
        """Draw the current session's last messages (or those around message id `focus`).

        The first time (just after the first frame) a line may already have
        been sent: the old messages go above it instead of replacing it.
        """
        conversation = self.query_one("#conversation", VerticalScroll)
        if not first:
            await conversation.remove_children()
        store, session_id = self.context.sessions, self.context.session_id
        if first:
            messages = self._initial_messages  # read at mount: a line sent since is on screen already
        else:
            messages = store.messages(session_id) if store is not None and session_id is not None else []
            self._restore_route(messages)
        widgets = []
        start = max(0, len(messages) - RESUME_MESSAGES)
        if focus is not None:  # /find: the found message and what follows it
            at = next((i for i, m in enumerate(messages) if m.id == focus), len(messages))
            start = min(start, max(0, at - 2))
        if start:
            widgets.append(NoticeLine("info", f"{start} earlier messages not shown; /export saves them all"))
        messages = messages[start:start + RESUME_MESSAGES]
        prompt = self.query_one(PromptInput)
        if not prompt.past_inputs:  # Up recalls what was asked in the resumed conversation too
            for m in messages:
                if m.role == "user" and len(m.content) <= 10_000:
                    prompt.remember(m.content)
        last_sources: list[Source] = []
        last_question = question = ""
        from assistant.tui.pictures import image_mode

        draw = image_mode(self.context.config) != "off"  # resumed pictures are drawn again
        found_widget = None
        for m in messages:
            if m.superseded:
                widgets.append(NoticeLine("info", "an earlier version of the next reply is kept in the session "
                                                  "(/export shows both)"))
                continue
            if m.role == "user":
                question = m.content
                widgets.append(UserMessage(shorten_for_display(m.content), classes="user"))
            elif m.role == "assistant":
                parts: list = [MarkdownText(m.content, classes="reply-text")] if m.content.strip() else []
                for image in m.meta.get("images", []):
                    if isinstance(image, dict) and image.get("path"):
                        parts.append(ImageBlock(str(image["path"]), str(image.get("caption", "")), draw=draw))
                parts += [DataLine(str(shown)) for shown in m.meta.get("data", [])]
                sources = [Source(**s) for s in m.meta.get("sources", []) if isinstance(s, dict)]
                if sources:
                    parts.append(SourcesLine(sources))
                    last_sources, last_question = sources, question
                if m.meta.get("cancelled"):
                    parts.append(NoticeLine("warning", "cancelled"))
                widgets.append(Reply(*parts))
            else:
                widgets.append(NoticeLine("warning" if m.content.startswith("error") else "info", m.content))
            widgets[-1].message_id = m.id
            if m.id == focus:
                found_widget = widgets[-1]
                found_widget.add_class("found")
        widgets += [NoticeLine("warning", note) for note in self._startup_notices]
        self._startup_notices.clear()
        if not messages:
            widgets.append(Welcome(self.context, session_id))
        else:
            widgets.append(NoticeLine("info", f"resumed conversation #{session_id}"))
        if first and conversation.children:
            await conversation.mount_all(widgets, before=0)
        else:
            await conversation.mount_all(widgets)
        if not (first and self._busy):
            self.query_one(SourcesPanel).show(last_sources, last_question)
        if found_widget is not None:
            conversation.scroll_to_widget(found_widget, animate=False, top=True)
        else:
            conversation.scroll_end(animate=False)
            conversation.anchor()
        self._refresh_status()

    def _refresh_status(self) -> None:
        config = self.context.config
        working = ""
        if self._busy:
            seconds = int(time.monotonic() - self._started)
            self._shown_seconds = seconds
            if self._released:
                working = f"stopping the cancelled action… {seconds}s"
            else:
                working = f"working… {seconds}s (Esc cancels)"
        self.query_one(StatusLine).show(config.get("llm.backend"), self._plugin_status(), self.context.session_id, working)

    def _plugin_status(self) -> list[tuple[str, str]]:
        """What the plugins publish for the status line (rag: its knowledge base)."""
        parts: list[tuple[str, str]] = []
        registry = self.context.registry
        for plugin in registry.plugins.values() if registry is not None else ():
            status = getattr(plugin, "status", None)  # a plugin need not subclass Plugin
            try:
                parts.extend((str(label), str(value)) for label, value in (status(self.context) if status else ()))
            except Exception:  # noqa: BLE001 - a broken hook leaves its part out, never breaks the chat
                continue
        return parts

    # -- input ---------------------------------------------------------------------
    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self.query_one(CommandHints).show_for(event.text_area.text)

    async def on_prompt_input_submitted(self, event: PromptInput.Submitted) -> None:
        prompt = self.query_one(PromptInput)
        line = event.value
        if not line.strip():
            prompt.value = ""
            return
        if self._busy and not (self._released and self._pending is None):
            self.notify("still working on the last request; Escape cancels it", severity="warning")
            return
        prompt.value = ""
        if len(line) <= 10_000:  # a giant paste is not worth recalling
            prompt.remember(line)
        if line.strip().startswith("/") and split_command(line)[0] in CHAT_COMMANDS:
            await self._chat_command(*split_command(line))
            return
        if self._busy:
            # The cancelled plugin stops at its next step; run this right after.
            self._pending = line
            self.notify("this runs as soon as the cancelled action has stopped")
            return
        await self._start_action(line)

    async def _start_action(self, line: str, history: list | None = None, retry_of: Any = None) -> None:
        """Run `line`; with `retry_of` (a stored reply) it regenerates that reply instead of asking anew."""
        store, session_id = self.context.sessions, self.context.session_id
        if history is None:
            history = store.history(session_id) if store is not None and session_id is not None else []
        if retry_of is None and self._persisted(line) and store is not None and session_id is not None:
            store.add_message(session_id, "user", line.strip())
        conversation = self.query_one("#conversation", VerticalScroll)
        self._reply = Reply()
        self._retry_of = retry_of
        if retry_of is None:
            shown = UserMessage(shorten_for_display(line.strip()), classes="user")
        else:
            shown = NoticeLine("info", "regenerating the last reply (the earlier version stays in the session)")
        await conversation.mount_all([shown, self._reply])
        conversation.anchor()
        self._line = line
        # The panel shows the sources of the answer on screen: hidden until this one sends some (F2 shows the old).
        self.query_one(SourcesPanel).display = False
        self._busy = True
        self._released = False
        self._started = time.monotonic()
        self.context.cancel.reset()
        self._refresh_status()
        self._drain_timer.resume()
        threading.Thread(target=self._run_action, args=(line, history), daemon=True, name="assistant-action").start()

    def _persisted(self, line: str) -> bool:
        """Session-control commands (/help, /new, ...) are not part of the conversation."""
        text = line.strip()
        if len(text) > MAX_INPUT_CHARS:
            return False
        if text.startswith("/") and self.context.registry is not None:
            found = self.context.registry.plugin_for_command(split_command(text)[0])
            return found is not None and found[0].name not in ("core", ChatCommandsPlugin.name)
        return True

    def _run_action(self, line: str, history: list[dict[str, str]]) -> None:
        def put(event: Any) -> None:
            with self._lock:
                self._queue.append(event)

        try:
            quoting = self._while_warming_up(put)
            if self.context.cancel.cancelled:
                return
            saved = self.context._services.get("llm") if quoting else None
            if quoting:
                # The model is still being prepared: answer now by quoting the notes.
                from assistant.llm.extractive import ExtractiveChatModel

                self.context._services["llm"] = ExtractiveChatModel()
                self.context.state.pop("last_prompt", None)
            try:
                for event in dispatch(line, self.context, history):
                    put(event)
            finally:
                if quoting:
                    if saved is not None:
                        self.context._services["llm"] = saved
                    else:
                        self.context._services.pop("llm", None)
            if quoting and "last_prompt" in self.context.state and self._retry_of is None:
                left = self.warmup.llm_seconds_left if self.warmup else None
                eta = f" (about {left:.0f} s left)" if left else ""
                put(Notice("info", f"quoted from the course notes while the language model is being prepared{eta}; "
                                   "the model's answer follows here when it is ready"))
                self._upgrade = True
        except Exception as exc:  # noqa: BLE001 - the router already catches plugin errors
            put(Error(f"internal error: {one_line(exc)}"))
        finally:
            put(_DONE)

    def _while_warming_up(self, put) -> bool:
        """Wait for the first run's index (with a notice); True if the model is not ready yet."""
        warm = self.warmup
        if warm is None:
            return False
        warm.start()  # a question asked before the first frame's timer
        if not warm.index_ready.is_set():
            put(Notice("info", "first run: waiting for the course notes to be indexed (see the bar below)"))
            while not warm.index_ready.wait(0.1):
                if self.context.cancel.cancelled:
                    return False
        backend = self.context.config.get("llm.backend")
        return loads_in_process(self.context, backend) and not warm.llm_ready.is_set()

    # -- events --------------------------------------------------------------------
    def _take_batch(self) -> list:
        """Queued events with consecutive Text deltas joined and Progress coalesced.

        Of several Progress events for one label between two other events only
        the latest is kept, so a training loop reporting every step costs one
        bar update per frame.
        """
        with self._lock:
            items = list(self._queue)
            self._queue.clear()
        batch: list = []
        progress: dict[str, Progress] = {}
        for item in items:
            if isinstance(item, Progress):
                progress.pop(item.label, None)
                progress[item.label] = item
                continue
            if progress:
                batch.extend(progress.values())
                progress = {}
            if isinstance(item, Text) and batch and isinstance(batch[-1], Text):
                batch[-1] = Text(batch[-1].delta + item.delta)
            else:
                batch.append(item)
        batch.extend(progress.values())
        return batch

    async def _drain(self) -> None:
        if int(time.monotonic() - self._started) != self._shown_seconds:
            self._refresh_status()  # the elapsed seconds show the app is alive
        async with self._ui_lock:
            for item in self._take_batch():
                if item is _DONE:
                    try:
                        await self._finish_action()
                    except Exception as exc:  # noqa: BLE001 - the chat goes on regardless
                        self.notify(f"could not close the reply: {exc}", severity="error")
                    break
                if self._released:
                    continue  # a cancelled action's late events are dropped
                try:
                    await self._show_event(item)
                except Exception as exc:  # noqa: BLE001 - a bad event must not end the chat
                    self.notify(f"cannot show {type(item).__name__}: {exc}", severity="error")
        if not self._busy and self._pending is not None:
            line, self._pending = self._pending, None
            await self._start_action(line)

    async def _add_to_reply(self, widget) -> None:
        if self._reply is not None and self._reply.is_attached:
            await self._reply.add(widget)
        else:
            await self.query_one("#conversation").mount(widget)

    async def _show_event(self, event: Event) -> None:
        reply = self._reply
        if isinstance(event, Text):
            if reply is not None:
                await reply.write(event.delta)
        elif isinstance(event, Sources):
            if reply is not None:
                reply.sources.extend(event.sources)  # listed under the reply when it ends
            self.query_one(SourcesPanel).show(reply.sources if reply else event.sources, self._line)
        elif isinstance(event, Progress):
            await self.query_one(ProgressPanel).update_progress(event)
        elif isinstance(event, Image):
            if reply is not None:
                reply.images.append({"path": event.path, "caption": event.caption})
            from assistant.tui.pictures import image_mode

            draw = image_mode(self.context.config) != "off"
            await self._add_to_reply(ImageBlock(event.path, event.caption, draw=draw))
        elif isinstance(event, Error):
            if reply is not None:
                reply.errors.append(event.line())
            await self._add_to_reply(ErrorLine(event))
        elif isinstance(event, Notice):
            if reply is not None and event.message == "cancelled":
                reply.cancelled = True
            await self._add_to_reply(NoticeLine(event.level, event.message))
        elif isinstance(event, Control):
            await self._handle_control(event)
        elif isinstance(event, Data):
            await self._handle_data(event.obj)

    async def _handle_control(self, event: Control) -> None:
        """What a plugin asks of the front end itself; unknown actions are ignored."""
        if event.action == "clear":
            self.context.session_id = self.context.sessions.new_session() if self.context.sessions else None
        if event.action in ("session", "clear"):
            self._reply = None
            await self._show_session()
        elif event.action == "quit":
            await self.action_quit()
        elif event.action in ("model", "kb", "status"):
            self._refresh_status()

    async def _handle_data(self, obj: Any) -> None:
        # For people: a compact line or table; the raw JSON only with /debug.
        from assistant.present import describe_data, raw_json

        shown = describe_data(obj)
        if self.show_raw:
            shown = (shown + "\n\n" if shown else "") + f"```json\n{raw_json(obj)}\n```"
        if shown.strip():
            if self._reply is not None:
                self._reply.data.append(shown)
            await self._add_to_reply(DataLine(shown))

    async def _finish_action(self) -> None:
        self._drain_timer.pause()
        try:
            await self._close_reply()
        finally:
            self._retry_of = None
            if self._restore_backend is not None:  # /retry --model is for that one reply
                (previous,) = self._restore_backend
                if previous is None:
                    self.context.config.overrides.pop("llm.backend", None)
                else:
                    self.context.config.override("llm.backend", previous)
                self.context.drop_service("llm")
                self._restore_backend = None
            self._busy = False
            self._released = False
            self.context.cancel.reset()  # the worker is done: the next action starts clean
            self._refresh_status()

    async def _close_reply(self, note: str = "") -> None:
        """Save the current reply, end its stream and list its sources."""
        reply, self._reply = self._reply, None
        if reply is not None:
            self._save_reply(reply)
            await reply.close_block()
            if note and reply.is_attached:
                await reply.mount(NoticeLine("warning", note))
            if reply.sources and reply.is_attached:
                await reply.mount(SourcesLine(reply.sources))
            if not reply.children:
                await reply.remove()
        await self.query_one(ProgressPanel).clear()

    def _save_reply(self, reply: Reply) -> None:
        store, session_id = self.context.sessions, self.context.session_id
        if store is None or session_id is None or not self._persisted(self._line):
            return
        meta: dict[str, Any] = {}
        if reply.sources:
            meta["sources"] = [asdict(s) for s in reply.sources]
        if reply.images:
            meta["images"] = reply.images
        if reply.data:
            meta["data"] = reply.data
        route = self.context.state.get(LAST_ROUTE)
        if route:
            meta["route"] = list(route)  # follow-ups after a restart go back to this plugin
        retry_of = self._retry_of
        if retry_of is not None:
            meta["retry_of"] = retry_of.id
            meta["backend"] = self.context.config.get("llm.backend")
        if reply.cancelled:
            meta["cancelled"] = True
        if reply.text.strip() or reply.sources or reply.images or reply.data or reply.cancelled:
            new_id = store.add_message(session_id, "assistant", reply.text if reply.text.strip() else "*(no text)*", meta)
            if retry_of is not None:
                store.update_meta(retry_of.id, superseded_by=new_id)
        for error in reply.errors:
            store.add_message(session_id, "notice", f"error: {error}")
        self._line = ""

    # -- actions -------------------------------------------------------------------
    async def action_cancel(self) -> None:
        if self._busy:
            await self._cancel_action()
        else:
            self.query_one(PromptInput).value = ""

    async def _cancel_action(self) -> None:
        """Stop the running action and give the chat back at once.

        The plugin sees the token at its next step (a model load can take a
        while); until then its late events are dropped and a new line waits.
        """
        if self._released:
            return
        self.context.cancel.cancel()
        async with self._ui_lock:
            if self._busy and not self._released:
                self._released = True
                if self._reply is not None:
                    self._reply.cancelled = True
                await self._close_reply(note="cancelled")
        self._refresh_status()

    def action_scroll_conversation(self, direction: int) -> None:
        conversation = self.query_one("#conversation", VerticalScroll)
        if direction < 0:
            conversation.scroll_page_up()
        else:
            conversation.scroll_page_down()

    def action_toggle_sources(self) -> None:
        panel = self.query_one(SourcesPanel)
        panel.display = not panel.display and bool(panel.sources)

    def on_sources_panel_selected(self, message: SourcesPanel.Selected) -> None:
        from assistant.present import relevance

        panel = self.query_one(SourcesPanel)
        words = relevance([s.score for s in panel.sources])
        index = panel.sources.index(message.source) if message.source in panel.sources else -1
        shown = f"relevance: {words[index][0]} (compared with the other passages)" if index >= 0 else ""
        self.push_screen(SourceScreen(message.source, shown), lambda _: self.query_one(PromptInput).focus())

    def selected_text(self) -> str:
        """Text selected with the mouse on screen, or in the prompt."""
        try:
            text = self.screen.get_selected_text() or ""
        except Exception:  # noqa: BLE001 - no selection support: nothing selected
            text = ""
        if not text:
            prompt = self.query_one(PromptInput)
            text = getattr(prompt, "selected_text", "") or ""
        return text

    async def action_interrupt(self) -> None:
        """Ctrl+C: copy the selection if there is one; otherwise cancel, and quit when pressed twice."""
        selected = self.selected_text()
        if selected:
            self.copy_to_clipboard(selected)  # OSC 52: the terminal's clipboard, over SSH too
            self.screen.clear_selection()
            self.notify(f"copied {len(selected):,} characters")
            return
        now = time.monotonic()
        if now - self._last_interrupt <= QUIT_WINDOW_SECONDS:
            await self.action_quit()
            return
        self._last_interrupt = now
        if self._busy:
            await self._cancel_action()
        self.notify("press Ctrl+C again to quit", timeout=QUIT_WINDOW_SECONDS)

    async def action_quit(self) -> None:
        """Save what there is (a partial reply too) and leave."""
        if self._busy:
            self.context.cancel.cancel()
            if self._reply is not None:
                # Take what already arrived so nothing shown is lost.
                for item in self._take_batch():
                    if isinstance(item, Text):
                        self._reply.text_parts.append(item.delta)
                self._reply.cancelled = True
                self._save_reply(self._reply)
                self._reply = None
        self.exit()

    # -- chat-only commands ---------------------------------------------------------
    async def _chat_command(self, name: str, arg: str) -> None:
        try:
            if name == "copy":
                self._copy(arg)
            elif name == "retry":
                await self._retry(arg)
            elif name == "find":
                self._find(arg)
            elif name == "debug":
                self.show_raw = not self.show_raw
                self.notify("results now also show their raw JSON" if self.show_raw else "raw JSON hidden")
        except ValueError as exc:
            await self.query_one("#conversation").mount(ErrorLine(Error(str(exc))))

    def _conversation_messages(self) -> list:
        """This conversation's messages as /copy numbers them: questions and replies, from 1."""
        store, session_id = self.context.sessions, self.context.session_id
        if store is None or session_id is None:
            return []
        return [m for m in store.messages(session_id) if m.role in ("user", "assistant") and not m.superseded]

    def _copy(self, arg: str) -> None:
        number, code, block = parse_copy(arg)
        messages = self._conversation_messages()
        if number is None:
            chosen = next((m for m in reversed(messages) if m.role == "assistant"), None)
            if chosen is None:
                raise ValueError("no reply to copy yet")
        elif number > len(messages):
            raise ValueError(f"no message {number}: this conversation has {len(messages)}")
        else:
            chosen = messages[number - 1]
        text = chosen.content
        what = f"message {messages.index(chosen) + 1}"
        if code:
            blocks = code_blocks(text)
            if not blocks:
                raise ValueError(f"{what} has no code block")
            if block is not None:
                if block > len(blocks):
                    raise ValueError(f"{what} has {len(blocks)} code block(s)")
                text, what = blocks[block - 1], f"code block {block} of {what}"
            else:
                text, what = "\n\n".join(blocks), f"the code of {what}"
        self.copy_to_clipboard(text)
        self.notify(f"copied {what} ({len(text):,} characters)")

    async def _retry(self, arg: str) -> None:
        from assistant.llm.backends import backend_names

        if self._busy:
            raise ValueError("still working on the last request; Escape cancels it")
        rest, options = parse_flags(arg, {"model": str})
        if rest.strip():
            raise ValueError(f"/retry takes only --model BACKEND, not {rest.strip()!r}")
        backend = options.get("model")
        if backend is not None and backend not in backend_names():
            raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(backend_names())}")
        store, session_id = self.context.sessions, self.context.session_id
        messages = self._conversation_messages()
        last_user = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].role == "user"), None)
        if store is None or session_id is None or last_user is None:
            raise ValueError("nothing to regenerate yet")
        reply = next((m for m in messages[last_user + 1:] if m.role == "assistant"), None)
        if reply is None:
            raise ValueError("the last question has no reply to regenerate; ask it again")
        history = [{"role": m.role, "content": m.content} for m in messages[:last_user]][-20:]
        if backend is not None:
            # For this reply only: the override (if any) is put back when it ends; config.toml is never written.
            self._restore_backend = (self.context.config.overrides.get("llm.backend"),)
            self.context.config.override("llm.backend", backend)
            self.context.drop_service("llm")
        await self._start_action(messages[last_user].content, history=history, retry_of=reply)

    def _find(self, words: str) -> None:
        store = self.context.sessions
        if not words.strip():
            raise ValueError("/find needs words to look for, e.g. /find mode collapse")
        found = store.search(words) if store is not None else []
        if not found:
            self.notify(f"nothing found for {words.strip()!r}")
            return
        self.push_screen(FindScreen(words.strip(), found), self._jump_to)

    async def _jump_to(self, found: Any) -> None:
        self.query_one(PromptInput).focus()
        if found is None:
            return
        if self._busy:
            self.notify("still working on the last request; Escape cancels it", severity="warning")
            return
        self.context.session_id = found.session_id
        await self._show_session(focus=found.message_id)

    def on_unmount(self) -> None:
        if self._owns_store and self.context.sessions is not None:
            self.context.sessions.close()
            self.context.sessions = None
