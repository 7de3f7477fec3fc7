"""Run inside the example's virtual environment: drive the chat through Textual's pilot.

Prints one JSON object: the text of each reply, error lines and notices.
"""

import asyncio
import json
import sys
import time


async def main(home: str) -> dict:
    from assistant import Config, Context, resolve_home
    from assistant.registry import Registry
    from assistant.tui.app import ChatApp
    from assistant.tui.widgets import ErrorLine, NoticeLine, PromptInput, Reply

    app = ChatApp(Context(Config(resolve_home(home)), Registry.load()))
    out: dict = {"replies": [], "errors": [], "notices": []}
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        for line in ("/quiz diffusion models --cards 2 --answers", "quiz me on GANs",
                     "/quiz --cards 2"):
            app.query_one(PromptInput).value = line
            await pilot.press("enter")
            start = time.monotonic()
            await pilot.pause(0.2)
            while app.busy and time.monotonic() - start < 600:
                await pilot.pause(0.1)
            await pilot.pause(0.2)
            replies = list(app.query(Reply))
            out["replies"].append(replies[-1].text if replies else "")
        out["errors"] = [str(w.content) for w in app.query(ErrorLine)]
        out["notices"] = [str(w.content) for w in app.query(NoticeLine)]
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1]))))
