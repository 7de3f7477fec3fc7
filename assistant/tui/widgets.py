"""The chat's widgets: prompt with history, replies, sources, progress, status.

Only Textual is imported here; textual-image (and Pillow) load on the first
picture, so opening the chat stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from rich.text import Text as RichText
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, ProgressBar, Static, TextArea
from textual.widgets.option_list import Option

from assistant.events import Error, Progress, Source
from assistant.router import MAX_INPUT_CHARS
from assistant.sanitize import sanitize, sanitize_markdown

# A user message longer than this is shown cut (it is still sent in full).
MAX_DISPLAY_CHARS = 4_000


def shorten_for_display(text: str, limit: int = MAX_DISPLAY_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n\n*… {len(text) - limit:,} more characters not shown*"


# -- input -----------------------------------------------------------------------
class PromptInput(TextArea):
    """The prompt: several lines, Enter sends, Shift+Enter or Ctrl+J adds a line.

    Up/Down walk through earlier inputs from the first/last line (inside a
    multi-line draft they move the cursor); a command being typed is completed
    inline (the right arrow accepts it); a paste keeps its lines.
    """

    BINDINGS = [
        Binding("enter", "submit", "send", id="chat.send", priority=True, show=False),
        Binding("shift+enter,ctrl+j", "newline", "new line", id="chat.newline", priority=True, show=False),
        Binding("up", "history(-1)", "previous input", show=False),
        Binding("down", "history(1)", "next input", show=False),
    ]

    class Submitted(Message):
        def __init__(self, prompt: "PromptInput", value: str) -> None:
            super().__init__()
            self.prompt = prompt
            self.value = value

    def __init__(self, commands: Iterable[str], placeholder: str = "", **kwargs) -> None:
        super().__init__(placeholder=placeholder, soft_wrap=True, tab_behavior="focus", **kwargs)
        self.commands = sorted("/" + name for name in commands)
        self.past_inputs: list[str] = []  # not `history`: TextArea keeps its undo history there
        self._cursor = 0  # index into history; len(history) means "the line being typed"
        self._draft = ""

    @property
    def value(self) -> str:
        return self.text

    @value.setter
    def value(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)

    @property
    def _suggestion(self) -> str:
        """The whole suggested line (what the right arrow completes to)."""
        return self.text + self.suggestion if self.suggestion else ""

    def update_suggestion(self) -> None:
        typed = self.text
        if typed.startswith("/") and " " not in typed and "\n" not in typed and len(typed) > 1:
            match = next((c for c in self.commands if c.lower().startswith(typed.lower()) and c != typed), "")
            self.suggestion = match[len(typed):] if match else ""
        else:
            self.suggestion = ""

    def action_submit(self) -> None:
        self.post_message(self.Submitted(self, self.text))

    def action_newline(self) -> None:
        self.insert("\n")

    def remember(self, line: str) -> None:
        if line and (not self.past_inputs or self.past_inputs[-1] != line):
            self.past_inputs.append(line)
        self._cursor = len(self.past_inputs)
        self._draft = ""

    def action_history(self, step: int) -> None:
        row = self.cursor_location[0]
        inside = (step < 0 and row > 0) or (step > 0 and row < self.document.line_count - 1)
        if inside or not self.past_inputs:  # a multi-line draft: move the cursor as usual
            self.action_cursor_up() if step < 0 else self.action_cursor_down()
            return
        if self._cursor == len(self.past_inputs):
            self._draft = self.value
        self._cursor = max(0, min(len(self.past_inputs), self._cursor + step))
        self.value = self.past_inputs[self._cursor] if self._cursor < len(self.past_inputs) else self._draft

    async def _on_paste(self, event: events.Paste) -> None:
        event.stop()
        event.prevent_default()  # TextArea's own handler would insert it a second time
        if len(event.text) + len(self.text) > MAX_INPUT_CHARS:
            # Editing a huge value is slow; the router would refuse it anyway.
            self.notify(f"paste of {len(event.text):,} characters not inserted: the limit is {MAX_INPUT_CHARS:,}; "
                        "save it to a file and use /ingest PATH", severity="error", timeout=8)
            return
        result = self._replace_via_keyboard(event.text, *self.selection)  # its lines are kept
        if result:
            self.move_cursor(result.end_location)


class CommandHints(Static):
    """Commands matching what is typed after '/', with their help."""

    def __init__(self, commands: list[tuple[str, str, str]], **kwargs) -> None:
        super().__init__("", markup=False, **kwargs)
        self.commands = commands  # (name, usage, help)

    def show_for(self, value: str) -> None:
        if not value.startswith("/") or " " in value:
            self.display = False
            return
        typed = value[1:].lower()
        matches = [c for c in self.commands if c[0].startswith(typed)][:6]
        if not matches:
            self.display = False
            return
        lines = RichText()
        for i, (name, usage, help_) in enumerate(matches):
            if i:
                lines.append("\n")
            lines.append(f"/{name} {usage}".rstrip(), style="bold")
            lines.append(f"  {help_}", style="dim")
        self.update(lines)
        self.display = True


# -- conversation ----------------------------------------------------------------
class MarkdownText(Static):
    """Finished Markdown drawn as one Rich renderable.

    Textual's Markdown widget builds a widget per block, which costs ~0.1 s per
    message to mount and slows every later layout; replies stream into it and
    are swapped for this when they end, and resumed messages start as this.
    """

    def __init__(self, source: str, **kwargs) -> None:
        from rich.markdown import Markdown as RichMarkdown

        super().__init__(RichMarkdown(sanitize_markdown(source)), **kwargs)
        self.source = source


class UserMessage(MarkdownText):
    pass


class ErrorLine(Static):
    def __init__(self, error: Error) -> None:
        super().__init__(RichText("✗ " + sanitize(error.line())), classes="error-line")


class DataLine(MarkdownText):
    """A result payload drawn for people: one compact line or a small table."""

    def __init__(self, markdown: str) -> None:
        super().__init__(markdown, classes="data-line")


class NoticeLine(Static):
    def __init__(self, level: str, message: str) -> None:
        super().__init__(RichText(f"· {sanitize(message)}"), classes=f"notice-line {level}")


def short_location(source: Source) -> str:
    """`vae.md:59-73`: the file name and lines, for compact lists."""
    where = Path(source.source).name or source.source
    if source.start_line:
        end = source.end_line or source.start_line
        where += f":{source.start_line}" + (f"-{end}" if end != source.start_line else "")
    return where


class SourcesLine(Static):
    """A compact list of the sources under a reply; the panel has the details."""

    def __init__(self, sources: list[Source]) -> None:
        text = RichText("sources: ", style="bold")
        text.append(sanitize("  ".join(f"[{i}] {short_location(s)}" for i, s in enumerate(sources, 1))))
        text.append("  (Tab to the panel to read them)", style="dim italic")
        super().__init__(text, classes="sources-line")


class ImageBlock(Vertical):
    """A picture drawn with textual-image, or just its caption if it cannot be."""

    def __init__(self, path: str, caption: str = "", draw: bool = True) -> None:
        super().__init__(classes="image-block")
        self.path = path
        self.caption = caption
        self.draw = draw

    def compose(self) -> ComposeResult:
        picture = None
        if not self.draw:
            pass
        elif Path(self.path).is_file():
            try:
                from assistant.tui.pictures import load_image_widget

                picture = load_image_widget()(self.path, classes="picture")
            except Exception as exc:  # noqa: BLE001 - a picture never breaks the chat
                yield NoticeLine("warning", f"cannot draw the image here ({type(exc).__name__}: {exc})")
        else:
            yield NoticeLine("warning", "image file not found")
        if picture is not None:
            yield picture
        caption = f"{self.caption} — {self.path}" if self.caption else self.path
        yield Label(RichText(sanitize(caption)), classes="caption")


class Reply(Vertical):
    """One assistant turn: Markdown blocks, pictures, notices and errors in order."""

    def __init__(self, *children) -> None:
        super().__init__(*children, classes="reply")
        self.text_parts: list[str] = []
        self.sources: list[Source] = []
        self.images: list[dict[str, str]] = []
        self.errors: list[str] = []
        self.data: list[str] = []  # result payloads as drawn (Markdown), saved with the reply
        self.cancelled = False
        self._block = None  # the Markdown widget being streamed into
        self._stream = None

    async def write(self, chunk: str) -> None:
        """Append Markdown text, streamed into the current text block."""
        if not chunk:
            return
        self.text_parts.append(chunk)
        if self._block is None:
            from textual.widgets import Markdown  # markdown-it loads on the first reply, not at start

            self._block = Markdown(classes="reply-text")
            await self.mount(self._block)
            self._stream = Markdown.get_stream(self._block)
        await self._stream.write(sanitize(chunk))  # text_parts keep the raw reply

    async def close_block(self) -> None:
        """End the current text block (before a picture, at the end of the turn)."""
        block, stream = self._block, self._stream
        self._block = self._stream = None
        if stream is not None and block is not None and block.is_attached:
            await stream.stop()
        if block is not None and block.is_attached:
            await self.mount(MarkdownText(block.source, classes="reply-text"), before=block)
            await block.remove()

    async def add(self, widget) -> None:
        await self.close_block()
        await self.mount(widget)

    @property
    def text(self) -> str:
        return "".join(self.text_parts)


# -- sources -----------------------------------------------------------------------
class SourcesPanel(Vertical):
    """The sources of the latest reply; selecting one opens its passage."""

    class Selected(Message):
        def __init__(self, source: Source) -> None:
            super().__init__()
            self.source = source

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sources: list[Source] = []

    def compose(self) -> ComposeResult:
        yield Label("Sources", classes="panel-title")
        yield Label("", id="sources-for", classes="dim-hint")
        yield Label("Tab here, Enter to read one", classes="dim-hint")
        yield OptionList(id="source-list")

    def show(self, sources: list[Source], question: str = "") -> None:
        """List `sources`; `question` says which answer they belong to."""
        self.sources = list(sources)
        question = " ".join(question.split())
        self.query_one("#sources-for", Label).update(
            RichText(sanitize(f"for: {question[:60]}{'…' if len(question) > 60 else ''}")) if question else "")
        options = self.query_one(OptionList)
        options.clear_options()
        from assistant.present import relevance

        for i, (s, (words, bar)) in enumerate(zip(self.sources, relevance([s.score for s in self.sources])), 1):
            where = RichText(f"[{i}] ", style="bold")
            where.append(sanitize(short_location(s)))
            where.append(f"  {bar} {words}", style="dim")
            if s.heading:
                # The innermost heading says most; the modal shows the whole path.
                where.append("\n    " + sanitize(s.heading.split(" > ")[-1].strip()), style="italic")
            options.add_option(Option(where, id=f"source-{i}"))
        if self.sources:
            options.highlighted = 0
        self.display = bool(self.sources)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(self.Selected(self.sources[event.option_index]))


class SourceScreen(ModalScreen[None]):
    """The passage of one source and where it is."""

    BINDINGS = [Binding("escape,q", "dismiss_screen", "close")]

    def __init__(self, source: Source, relevance: str = "") -> None:
        super().__init__()
        self.source = source
        self.relevance = relevance  # e.g. "best match", relative to the other passages of the answer

    def compose(self) -> ComposeResult:
        with Vertical(id="source-dialog"):
            yield Label(RichText(sanitize(self.source.label())), id="source-where")
            where = f"{self.relevance} · {self.source.source}" if self.relevance else self.source.source
            yield Label(RichText(sanitize(where), style="dim"))
            with VerticalScroll(id="source-body"):
                yield Static(self._numbered(), id="source-text")
            yield Label("Escape closes", classes="dim-hint")

    def _numbered(self) -> RichText:
        """The passage with its line numbers in the source file."""
        text = RichText()
        if not self.source.text:
            return RichText("(no passage text)")
        first = self.source.start_line or 1
        for n, line in enumerate(self.source.text.splitlines(), first):
            if n > first:
                text.append("\n")
            text.append(f"{n:>5} │ ", style="dim")
            text.append(sanitize(line))
        return text

    def action_dismiss_screen(self) -> None:
        self.dismiss(None)


# -- progress and status ------------------------------------------------------------
class ProgressPanel(Vertical):
    """One labelled bar per task; a bar goes when its work is done.

    A label "task · detail" (e.g. "indexing the notes · about 20 s left")
    updates the bar of "task" and shows the detail beside it.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bars: dict[str, ProgressBar] = {}
        self.labels: dict[str, Label] = {}

    async def update_progress(self, event: Progress) -> None:
        key = event.label.split(" · ")[0]
        finished = event.total is not None and event.done >= event.total
        bar = self.bars.get(key)
        if finished:
            if bar is not None:
                del self.bars[key]
                self.labels.pop(key, None)
                await bar.parent.remove()
            self.display = bool(self.bars)
            return
        if bar is None:
            bar = ProgressBar(total=event.total, show_eta=False)
            self.bars[key] = bar
            self.labels[key] = Label(RichText(sanitize(event.label)), classes="progress-label")
            row = Vertical(self.labels[key], bar, classes="progress-row")
            await self.mount(row)
            self.display = True
        else:
            self.labels[key].update(RichText(sanitize(event.label)))
        bar.update(total=event.total, progress=event.done)

    async def clear(self) -> None:
        self.bars.clear()
        await self.remove_children()
        self.display = False


class Welcome(Static):
    """The empty conversation: things to try and the state of the models."""

    TRY = (
        ("a course question", "What is mode collapse in a GAN and how can I tell if my GAN has it?"),
        ("a follow-up", "How do I fix it?"),
        ("a prompt technique", "/cot A bus leaves at 9:40 and the trip takes 95 minutes. When does it arrive?"),
        ("an image", "draw 16 sevens"),
        ("your history", "/find mode collapse   ·   /copy   ·   /retry"),
    )

    def __init__(self, context, session_id: int | None) -> None:
        from assistant.warmup import model_states

        text = RichText()
        text.append(f"New conversation #{session_id}\n\n" if session_id is not None else "New conversation\n\n",
                    style="bold")
        text.append("Things to try\n", style="bold")
        for what, example in self.TRY:
            text.append(f"  {what:<20}", style="dim")
            text.append(example + "\n")
        text.append("\nModels\n", style="bold")
        for part, state in model_states(context):
            text.append(f"  {part:<26}", style="dim")
            text.append(state + "\n")
        text.append("\nType / for commands, /help for all of them; Ctrl+P opens the command palette.", style="dim")
        super().__init__(text, classes="welcome")


class FindScreen(ModalScreen):
    """/find results across all conversations; Enter jumps to one."""

    BINDINGS = [Binding("escape", "dismiss_screen", "close")]

    def __init__(self, words: str, found: list) -> None:
        super().__init__()
        self.words = words
        self.found = found

    def compose(self) -> ComposeResult:
        import time

        with Vertical(id="find-dialog"):
            yield Label(RichText(sanitize(f"{len(self.found)} message(s) with “{self.words}” · Enter opens one, ")
                                 + "Escape closes", style="bold"))
            options = OptionList(id="find-list")
            for hit in self.found:
                line = RichText(f"#{hit.session_id} ", style="bold")
                line.append(sanitize(f"{hit.title[:40]} · {time.strftime('%Y-%m-%d %H:%M', time.localtime(hit.created))}\n"),
                            style="dim")
                line.append(("you: " if hit.role == "user" else "reply: ") + sanitize(hit.snippet))
                options.add_option(Option(line))
            yield options

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.found[event.option_index])

    def action_dismiss_screen(self) -> None:
        self.dismiss(None)


class StatusLine(Static):
    def show(self, backend: str, parts: list[tuple[str, str]], session: int | None, working: str = "") -> None:
        """`parts`: the (label, value) pairs the plugins publish (`Plugin.status`)."""
        text = RichText()
        text.append("LLM ", style="dim")
        text.append(str(backend))
        for label, value in parts:
            text.append(f"  ·  {label} ", style="dim")
            text.append(value)
        text.append("  ·  session ", style="dim")
        text.append(f"#{session}" if session is not None else "-")
        text.append("  ·  ", style="dim")
        text.append(working or "ready", style="bold" if working else "dim")
        self.update(text)
