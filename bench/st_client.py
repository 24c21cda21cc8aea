"""A Streamlit session without a browser: the websocket protocol the page itself speaks.

``bench/classroom.py`` uses it to put thirty students on one server without thirty
Chromium tabs rendering on the server's own cores. A :class:`Session` connects to
``/_stcore/stream`` like a tab, asks for a page (``BackMsg.rerun_script``), reads every
``ForwardMsg`` the server sends, presses buttons (a widget state with ``trigger_value``),
follows ``st.switch_page`` and ``?run=`` changes, and re-runs ``st.fragment(run_every=...)``
fragments on their interval as the page's own timer does (``AutoRerun``). It draws nothing,
so its times are the server's: a request sent to the script's ``script_finished``.

What it does not do that a tab does: load the static files, render, answer custom
components, send the values of widgets it was not told to change with each re-run (keyed
widgets keep their values in the session; the server has a little less to read, a small
lean toward better figures), or report cached message hashes (the server sends every
message whole, a lean the other way).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import connect

# ScriptFinished's statuses (streamlit/proto/ForwardMsg.proto)
FINISHED = 0  # FINISHED_SUCCESSFULLY
FINISHED_WITH_COMPILE_ERROR = 1
FINISHED_EARLY_FOR_RERUN = 2  # st.rerun / st.switch_page: another run follows
FRAGMENT_FINISHED = 3  # FINISHED_FRAGMENT_RUN_SUCCESSFULLY
DONE = (FINISHED, FRAGMENT_FINISHED)


@dataclass
class Session:
    """One browser-less Streamlit session on ``url`` (``http://host:port``)."""

    url: str
    pages: dict[str, str] = field(default_factory=dict)  # page name -> script hash
    page_hash: str = ""  # the page the server last said it shows ("" = the default)
    query_string: str = ""
    buttons: dict[str, str] = field(default_factory=dict)  # label -> widget id, last seen
    fragments: dict[str, float] = field(default_factory=dict)  # fragment id -> interval
    fragment_ms: list[float] = field(default_factory=list)  # auto re-run asked -> answered
    errors: list[str] = field(default_factory=list)  # exceptions the scripts showed
    alerts: list[str] = field(default_factory=list)  # st.error/warning/... of the last run

    def __post_init__(self):
        self._ws = None
        self._finished: asyncio.Queue[int] = asyncio.Queue()
        self._reader: asyncio.Task | None = None
        self._timers: dict[str, asyncio.Task] = {}
        self._sent: dict[str, list[float]] = {}  # fragment id -> send times, not yet taken
        self._taken: list[float] = []  # send times the fragment run in progress answers

    # ------------------------------------------------------------------ connection
    async def __aenter__(self) -> Session:
        ws_url = self.url.replace("http://", "ws://", 1).rstrip("/") + "/_stcore/stream"
        self._ws = await connect(ws_url, subprotocols=["streamlit"], max_size=None)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc) -> None:
        for t in self._timers.values():
            t.cancel()
        if self._reader is not None:
            self._reader.cancel()
        await self._ws.close()

    async def _read(self) -> None:
        async for data in self._ws:
            msg = ForwardMsg()
            msg.ParseFromString(data)
            self._take(msg)

    def _take(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "new_session" and msg.metadata.run.fragment_ids:
            # a fragment's re-run starts: it answers the re-runs asked for before now (one
            # asked for while it runs waits for the next run)
            self._taken += [t for sent in self._sent.values() for t in sent]
            for sent in self._sent.values():
                sent.clear()
        elif kind == "new_session":
            # a full run of the script starts: its buttons and alerts are new, and, as the
            # page does, the fragments' timers stop (the run re-registers the fragments it
            # still draws; re-runs asked for before it are not answered)
            self.buttons.clear()
            self.alerts.clear()
            for t in self._timers.values():
                t.cancel()
            self._timers.clear()
            self.fragments.clear()
            self._sent.clear()
            self._taken.clear()
        elif kind == "navigation":
            self.page_hash = msg.navigation.page_script_hash
            self.pages = {p.page_name: p.page_script_hash for p in msg.navigation.app_pages}
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            el = msg.delta.new_element
            which = el.WhichOneof("type")
            if which == "button":
                self.buttons[el.button.label] = el.button.id
            elif which == "exception":
                self.errors.append(f"{el.exception.type}: {el.exception.message}"[:300])
            elif which == "alert":  # st.error, st.warning, st.info, st.success
                self.alerts.append(el.alert.body[:300])
        elif kind == "auto_rerun":
            fid, every = msg.auto_rerun.fragment_id, msg.auto_rerun.interval
            self.fragments[fid] = every
            if fid not in self._timers:
                self._timers[fid] = asyncio.create_task(self._auto_rerun(fid))
        elif kind == "stop_auto_rerun":
            for fid in msg.stop_auto_rerun.fragment_ids:
                self.fragments.pop(fid, None)
                timer = self._timers.pop(fid, None)
                if timer is not None:
                    timer.cancel()
        elif kind == "script_finished":
            status = msg.script_finished
            self._finished.put_nowait(status)
            if status == FRAGMENT_FINISHED:  # the server merges requests that queue up
                now = time.perf_counter()
                self.fragment_ms += [(now - t) * 1000 for t in self._taken]
                self._taken.clear()

    # ------------------------------------------------------------------ requests
    async def _send(self, fragment_id: str = "", trigger: str | None = None) -> None:
        back = BackMsg()
        state = back.rerun_script
        state.query_string = self.query_string
        state.page_script_hash = self.page_hash
        if fragment_id:
            state.fragment_id = fragment_id
            state.is_auto_rerun = True
        if trigger is not None:
            w = state.widget_states.widgets.add()
            w.id = trigger
            w.trigger_value = True
        await self._ws.send(back.SerializeToString())

    async def _auto_rerun(self, fid: str) -> None:
        """The page's timer: a fragment re-run every interval, as long as the fragment lives.
        Like the page, it does not wait for the previous one (the server merges them)."""
        while True:
            await asyncio.sleep(self.fragments.get(fid, 1.0))
            self._sent.setdefault(fid, []).append(time.perf_counter())
            await self._send(fid)

    async def _until_drawn(self, timeout: float) -> None:
        """Wait for the page's run to finish (through any st.rerun / st.switch_page)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the page was not drawn within {timeout:.0f} s")
            try:
                status = await asyncio.wait_for(self._finished.get(), min(left, 1.0))
            except TimeoutError:
                if self._reader is not None and self._reader.done():  # the socket is gone
                    raise ConnectionError("the server closed the session") from None
                continue
            if status == FINISHED_WITH_COMPILE_ERROR:
                raise RuntimeError("the page's script did not compile")
            if status == FINISHED:
                return

    async def open(self, page: str = "", query_string: str = "", timeout: float = 120) -> float:
        """Ask for a page (a name from ``pages``; "" = the default) and wait until it is
        drawn. Returns the milliseconds it took."""
        self.page_hash = self.pages.get(page, "") if page else ""
        self.query_string = query_string
        self._drain()
        t = time.perf_counter()
        await self._send()
        await self._until_drawn(timeout)
        return (time.perf_counter() - t) * 1000

    async def press(self, label: str, timeout: float = 120) -> float:
        """Press the button labelled ``label`` on the page drawn last and wait until the page
        it leads to is drawn. Returns the milliseconds it took."""
        if label not in self.buttons:
            raise KeyError(f"no button {label!r} on the page (saw {sorted(self.buttons)})")
        self._drain()
        t = time.perf_counter()
        await self._send(trigger=self.buttons[label])
        await self._until_drawn(timeout)
        return (time.perf_counter() - t) * 1000

    def _drain(self) -> None:
        while not self._finished.empty():
            self._finished.get_nowait()
