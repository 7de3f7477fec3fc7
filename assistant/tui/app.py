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
from textual.widgets import Footer, Input

from assistant.errors import one_line
from assistant.events import Data, Error, Event, Image, Notice, Progress, Source, Sources, Text
from assistant.plugin import Context
from assistant.router import MAX_INPUT_CHARS, dispatch, split_command
from assistant.sanitize import safe_url, sanitize
from assistant.warmup import warm_up_models
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
    SourcesPanel,
    StatusLine,
    UserMessage,
    shorten_for_display,
)

# Messages of a resumed conversation drawn at start; older ones stay in /export.
RESUME_MESSAGES = 20
DRAIN_SECONDS = 0.05
QUIT_WINDOW_SECONDS = 3.0
_DONE = object()  # end-of-action marker in the event queue


class ChatApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "course assistant"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("escape", "cancel", "cancel", priority=False),
        Binding("ctrl+c", "interrupt", "quit (twice)", priority=True, show=False),
        Binding("ctrl+q", "quit", "quit", priority=True),
        Binding("f2", "toggle_sources", "sources"),
        Binding("pageup", "scroll_conversation(-1)", "scroll up", show=False),
        Binding("pagedown", "scroll_conversation(1)", "scroll down", show=False),
    ]

    def __init__(self, context: Context, warm_up: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.context = context
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
        self._open_session()
        self.query_one("#sources").display = False
        self.query_one("#progress").display = False
        self.query_one("#hints").display = False
        self._refresh_status()
        self.query_one(PromptInput).focus()
        self._drain_timer = self.set_interval(DRAIN_SECONDS, self._drain, pause=True)
        # Draw the old conversation after the first frame so the prompt shows at once.
        self.call_after_refresh(self._show_first_session)
        if self._warm_up:
            # After the first frame: the prompt is usable while models load.
            self.set_timer(0.5, self._start_warm_up)

    def _start_warm_up(self) -> None:
        threading.Thread(target=warm_up_models, args=(self.context,), name="warm-up", daemon=True).start()

    # -- sessions ------------------------------------------------------------------
    def _open_session(self) -> None:
        if self.context.sessions is None:
            self.context.sessions = self._open_store()
            self._owns_store = True
        store = self.context.sessions
        if self.context.session_id is None or not store.exists(self.context.session_id):
            self.context.session_id = store.last_session() or store.new_session()
        self._initial_messages = store.messages(self.context.session_id)

    def _open_store(self):
        """The session store; an unreadable database is moved aside, never lost or fatal."""
        import sqlite3

        from assistant.sessions import SessionStore

        path = self.context.config.sessions_db
        try:
            return SessionStore(path)
        except sqlite3.DatabaseError as exc:
            aside = path.with_name(f"{path.name}.unreadable-{int(time.time())}")
            path.rename(aside)
            self._startup_notices.append(f"the session database could not be read ({exc}); "
                                         f"it was moved to {aside} and a new one started")
            return SessionStore(path)

    async def _show_first_session(self) -> None:
        await self._show_session(first=True)

    async def _show_session(self, first: bool = False) -> None:
        """Draw the current session's last messages.

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
        widgets = []
        if len(messages) > RESUME_MESSAGES:
            hidden = len(messages) - RESUME_MESSAGES
            widgets.append(NoticeLine("info", f"{hidden} earlier messages not shown; /export saves them all"))
            messages = messages[-RESUME_MESSAGES:]
        prompt = self.query_one(PromptInput)
        if not prompt.history:  # Up recalls what was asked in the resumed conversation too
            for m in messages:
                if m.role == "user" and len(m.content) <= 10_000:
                    prompt.remember(m.content)
        last_sources: list[Source] = []
        last_question = question = ""
        for m in messages:
            if m.role == "user":
                question = m.content
                widgets.append(UserMessage(shorten_for_display(m.content), classes="user"))
            elif m.role == "assistant":
                parts: list = [MarkdownText(m.content, classes="reply-text")] if m.content.strip() else []
                for image in m.meta.get("images", []):
                    parts.append(NoticeLine("info", f"image: {image.get('caption', '')} — {image.get('path')}"))
                sources = [Source(**s) for s in m.meta.get("sources", []) if isinstance(s, dict)]
                if sources:
                    parts.append(SourcesLine(sources))
                    last_sources, last_question = sources, question
                if m.meta.get("cancelled"):
                    parts.append(NoticeLine("warning", "cancelled"))
                widgets.append(Reply(*parts))
            else:
                widgets.append(NoticeLine("warning" if m.content.startswith("error") else "info", m.content))
        widgets += [NoticeLine("warning", note) for note in self._startup_notices]
        self._startup_notices.clear()
        if not messages:
            widgets.append(NoticeLine("info", f"new conversation #{session_id} · type /help for commands"))
        else:
            widgets.append(NoticeLine("info", f"resumed conversation #{session_id}"))
        if first and conversation.children:
            await conversation.mount_all(widgets, before=0)
        else:
            await conversation.mount_all(widgets)
        if not (first and self._busy):
            self.query_one(SourcesPanel).show(last_sources, last_question)
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
        self.query_one(StatusLine).show(
            config.get("llm.backend", "?"), config.get("rag.kb", "?"), self.context.session_id, working
        )

    # -- input ---------------------------------------------------------------------
    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one(CommandHints).show_for(event.value)

    async def on_input_submitted(self, event: Input.Submitted) -> None:
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
        if self._busy:
            # The cancelled plugin stops at its next step; run this right after.
            self._pending = line
            self.notify("this runs as soon as the cancelled action has stopped")
            return
        await self._start_action(line)

    async def _start_action(self, line: str) -> None:
        store, session_id = self.context.sessions, self.context.session_id
        history = store.history(session_id) if store is not None and session_id is not None else []
        if self._persisted(line) and store is not None and session_id is not None:
            store.add_message(session_id, "user", line.strip())
        conversation = self.query_one("#conversation", VerticalScroll)
        self._reply = Reply()
        await conversation.mount_all([UserMessage(shorten_for_display(line.strip()), classes="user"), self._reply])
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
            return found is not None and found[0].name != "core"
        return True

    def _run_action(self, line: str, history: list[dict[str, str]]) -> None:
        try:
            for event in dispatch(line, self.context, history):
                with self._lock:
                    self._queue.append(event)
        except Exception as exc:  # noqa: BLE001 - the router already catches plugin errors
            with self._lock:
                self._queue.append(Error(f"internal error: {one_line(exc)}"))
        finally:
            with self._lock:
                self._queue.append(_DONE)

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
        elif isinstance(event, Data):
            await self._handle_data(event.obj)

    async def _handle_data(self, obj: Any) -> None:
        action = obj.get("action") if isinstance(obj, dict) else None
        if action == "session":
            self._reply = None
            await self._show_session()
        elif action == "quit":
            await self.action_quit()
        elif action in ("model", "export"):
            self._refresh_status()
        elif self._reply is not None:
            import json

            try:
                shown = json.dumps(obj, indent=2, ensure_ascii=False, default=str)
            except (TypeError, ValueError):
                shown = repr(obj)
            await self._reply.write(f"\n```json\n{shown}\n```\n")

    async def _finish_action(self) -> None:
        self._drain_timer.pause()
        try:
            await self._close_reply()
        finally:
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
        if reply.cancelled:
            meta["cancelled"] = True
        if reply.text.strip() or meta:
            store.add_message(session_id, "assistant", reply.text if reply.text.strip() else "*(no text)*", meta)
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
        self.push_screen(SourceScreen(message.source), lambda _: self.query_one(PromptInput).focus())

    async def action_interrupt(self) -> None:
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

    def on_unmount(self) -> None:
        if self._owns_store and self.context.sessions is not None:
            self.context.sessions.close()
            self.context.sessions = None
