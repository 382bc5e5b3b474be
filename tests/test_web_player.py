"""The web player (assistant/server/static) in a real headless Chromium, driven by Selenium.

Debian's chromium and chromium-driver (scripts/setup.sh installs them); nothing is downloaded.
One browser and one daemon serve the whole module: `assistant serve` as a subprocess with the
shipped recognizer, a small JSONL catalog plus a music folder of generated OGG files, and the
model-free hashing embedder so that it starts in seconds. Chromium's fake media devices stand in
for the microphone: what the page's microphone hears is a command synthesized with espeak-ng. A
scripted server that sends whatever a test asks for stands in for a broken or mismatched daemon.

Screenshots go to test-artifacts/ in the checkout (git-ignored); their paths are printed.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import urllib3
from selenium import webdriver
from selenium.common.exceptions import (ElementClickInterceptedException, ElementNotInteractableException,
                                        NoSuchElementException, StaleElementReferenceException, TimeoutException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.command import Command
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from assistant.config import ServerConfig
from assistant.recommend.preferences import PreferenceStore
from assistant.recommend.song import song_id
from assistant.server import protocol as p
from assistant.server.metrics import DaemonMetrics
from assistant.server.routes import HttpRoutes
from assistant.server.security import AccessPolicy
from daemon_proc import COMMAND, REPO, recognizer_model, start_daemon, stop_daemon, wait_healthy
from test_server import http_fetch, http_get, recv

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = REPO / "test-artifacts"
WAIT_S = 60.0  # for what the page should show; only reached on failure, generous for a loaded machine
COMMAND_TIMEOUT_S = 20.0  # one WebDriver command (Selenium's own default: one 120 s call); a read is then sent again
# Commands that only read (or redo what they did) and so are sent again when Chromium, starved, does not answer in time.
RETRIED_COMMANDS = frozenset({Command.W3C_EXECUTE_SCRIPT, Command.FIND_ELEMENT, Command.FIND_ELEMENTS, Command.FIND_CHILD_ELEMENT,
                              Command.FIND_CHILD_ELEMENTS, Command.GET_ELEMENT_TEXT, Command.GET_ELEMENT_ATTRIBUTE,
                              Command.GET_ELEMENT_PROPERTY, Command.GET_CURRENT_URL, Command.GET, Command.GET_LOG})
RATE_HZ = 16000
SONG_S = 120  # longer than the module: no song ends and moves the player on to the next one by itself
REQUESTS = ("play something sad by adele", "recommend some folk", "more like this", "play happy by pharrell williams")

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FOLDER_SONGS = [("Rainy Window", "Test Quartet", "folk"), ("Sunny Steps", "Test Quartet", "pop"), ("Gone Tomorrow", "Test Quartet", "folk")]
HOSTILE_TITLE = '<img src=x onerror="window.__pwned=1">'
CATALOG = [
    {"title": "Someone Like You", "artist": "Adele", "genres": ["pop", "soul"], "year": 2011, "valence": 0.2, "energy": 0.3},
    {"title": "Hello", "artist": "Adele", "genres": ["pop", "soul"], "year": 2015, "valence": 0.25, "energy": 0.45},
    {"title": "Rolling in the Deep", "artist": "Adele", "genres": ["pop", "soul"], "year": 2010, "valence": 0.5, "energy": 0.75},
    {"title": "Happy", "artist": "Pharrell Williams", "genres": ["pop"], "year": 2013, "valence": 0.95, "energy": 0.8},
    {"title": HOSTILE_TITLE, "artist": "Mallory", "genres": ["rock"], "year": 2020},
    {"title": "Secret Song", "artist": "Outsider", "genres": ["folk"], "year": 2001},  # source: a file outside the music folder
]


# ---------------------------------------------------------------- helpers


def write_songs(songs: dict[Path, tuple[str, str, str]]) -> None:
    """Tagged OGG Vorbis files ({path: (title, artist, genre)}): one chord of SONG_S seconds, encoded once."""
    from mutagen.oggvorbis import OggVorbis

    rate = 8000
    t = np.arange(rate * SONG_S) / rate
    audio = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in (1, 1.25, 1.5)) * 0.1
    first = None
    for path, (title, artist, genre) in songs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if first is None:
            sf.write(str(path), audio.astype(np.float32), rate, format="OGG", subtype="VORBIS")
            first = path
        else:
            shutil.copyfile(first, path)
        tags = OggVorbis(path)
        tags.update({"title": title, "artist": artist, "genre": genre})
        tags.save()


def speech_span_s(audio: np.ndarray, frame_ms: int = 10, floor_db: float = -40.0) -> float:
    """From the first to the last frame louder than `floor_db` (dBFS), in seconds."""
    n = RATE_HZ * frame_ms // 1000
    frames = audio[: len(audio) // n * n].reshape(-1, n)
    loud = np.flatnonzero(20 * np.log10(np.sqrt((frames ** 2).mean(axis=1)) + 1e-9) > floor_db)
    return (loud[-1] - loud[0] + 1) * frame_ms / 1000


class Chromium(webdriver.Chrome):
    """Chrome whose commands never hang a test: each waits at most COMMAND_TIMEOUT_S for chromedriver, and a
    read that got no answer in time (a starved machine) is sent again, for up to WAIT_S in all."""

    retries = 0  # commands sent again after no answer in time

    def execute(self, driver_command: str, params: dict | None = None):
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                return super().execute(driver_command, params)
            except urllib3.exceptions.TimeoutError:
                if driver_command not in RETRIED_COMMANDS or time.monotonic() > deadline:
                    raise
                self.retries += 1


def wait_until(driver, condition, message: str, timeout_s: float = WAIT_S):
    """condition(driver) -> truthy value; fails the test with `message` and the page's problems on timeout."""
    try:
        return WebDriverWait(driver, timeout_s, poll_frequency=0.05,  # a list re-rendered under the condition: look again
                             ignored_exceptions=(NoSuchElementException, StaleElementReferenceException,
                                                 urllib3.exceptions.TimeoutError)).until(lambda d: condition(d))
    except TimeoutException:
        try:
            seen = f"page problems: {problems(driver)}; connection: {text(driver, 'connection')!r}"
        except urllib3.exceptions.TimeoutError:
            seen = "the browser did not answer"
        pytest.fail(f"{message}; {seen}")


def text(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def stats(driver) -> dict:
    return driver.execute_script("return window.__playerStats.summary()")


def problems(driver) -> list[str]:
    return driver.execute_script("return [...document.querySelectorAll('#errors li')].map((li) => li.textContent)")


def audio_state(driver) -> dict:
    return driver.execute_script(
        "const a = document.getElementById('audio');"
        "return {paused: a.paused, src: a.currentSrc, time: a.currentTime, volume: a.volume};")


def song_items(driver) -> list[dict]:
    return driver.execute_script("""
        return [...document.querySelectorAll('#songs li.song')].map((li) => ({
          id: li.dataset.id, title: li.querySelector('.title').textContent, artist: li.querySelector('.artist').textContent,
          reasons: [...li.querySelectorAll('.reasons li')].map((r) => r.textContent),
          playable: !li.querySelector('button[data-action=play]').disabled}));""")


def ask(driver, request: str) -> None:
    """Type a request into the page's text box and press Enter (the keyboard, not a click)."""
    box = driver.find_element(By.ID, "query")
    box.clear()
    box.send_keys(request, Keys.ENTER)


def wait_events(driver, kind: str, more_than: int, message: str, timeout_s: float = WAIT_S) -> dict:
    return wait_until(driver, lambda d: (s := stats(d))["events"].get(kind, 0) > more_than and s, message, timeout_s)


def wait_connected(driver) -> None:
    wait_until(driver, lambda d: text(d, "connection") == "Connected", "the page did not connect")


def song_button(driver, song: str, action: str):
    return driver.find_element(By.CSS_SELECTOR, f'#songs li[data-id="{song}"] button[data-action="{action}"]')


def press(driver, song: str, action: str, key: str | None = None) -> None:
    """Click a song's button (or press `key` on it) as soon as it can be used. The list may be re-rendered between
    finding the button and using it (the answer to this request replacing the one before), so retry until it works."""
    def attempt(d) -> bool:
        try:
            button = song_button(d, song, action)
            if key is None:
                button.click()
            else:
                button.send_keys(key)
            return True
        except (NoSuchElementException, StaleElementReferenceException, ElementNotInteractableException,
                ElementClickInterceptedException):
            return False

    wait_until(driver, attempt, f"the {action} button of song {song} could not be used")


def store_events(db: Path) -> list:
    with PreferenceStore(db) as store:
        return store.events("default")


def screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> SimpleNamespace:
    return make_library(tmp_path_factory.mktemp("web_player"))


def make_library(root: Path) -> SimpleNamespace:
    """A music folder, a file outside it, and a JSONL catalog in `root`; song ids by title."""
    music = root / "music"
    files = {title: music / f"{i}.ogg" for i, (title, *_) in enumerate(FOLDER_SONGS)}
    outside = root / "outside" / "secret.ogg"
    write_songs({**{files[title]: (title, artist, genre) for title, artist, genre in FOLDER_SONGS},
                 outside: ("Secret Song", "Outsider", "folk")})
    catalog = root / "catalog.jsonl"
    lines = [dict(song, source=str(outside)) if song["title"] == "Secret Song" else song for song in CATALOG]
    catalog.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    ids = {title: song_id(artist, title) for title, artist, *_ in FOLDER_SONGS}
    ids.update({song["title"]: song_id(song["artist"], song["title"]) for song in CATALOG})
    return SimpleNamespace(root=root, music=music, files=files, outside=outside, catalog=catalog, ids=ids)


@pytest.fixture(scope="module")
def command_wav(tmp_path_factory) -> SimpleNamespace | None:
    """COMMAND spoken by espeak-ng, 16 kHz, with silence around it; None without espeak-ng."""
    if shutil.which("espeak-ng") is None:
        return None
    root = tmp_path_factory.mktemp("command")
    raw = root / "espeak.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), COMMAND], check=True, capture_output=True)
    import soxr

    audio, rate = sf.read(str(raw), dtype="float32")
    audio = soxr.resample(audio, rate, RATE_HZ)
    padded = np.concatenate([np.zeros(RATE_HZ // 2, np.float32), audio, np.zeros(RATE_HZ * 3 // 2, np.float32)])
    path = root / "command.wav"
    sf.write(str(path), padded, RATE_HZ, subtype="PCM_16")
    return SimpleNamespace(path=path, speech_s=speech_span_s(audio))


class PlayerDaemon:
    """`assistant serve` on one port for the whole module; restartable on that same port."""

    def __init__(self, library: SimpleNamespace, model: Path):
        self.library = library
        self.model = model
        self.root = library.root
        self.port: int | None = None
        self.proc = None
        self.log = None
        self.extra = (f'[recommend]\nuse_default_catalog = false\ncatalogs = ["{library.catalog}"]\n'
                      f'music_folders = ["{library.music}"]\nembed_model = "hashing"\ncache_dir = "{self.root / "cache"}"\n')

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db(self) -> Path:
        return self.root / "prefs.sqlite3"

    def start(self, *args: str) -> None:
        self.proc, self.port, self.log = start_daemon(self.root, dict(os.environ), self.model, port=self.port,
                                                      extra_config=self.extra, args=args)
        wait_healthy(self.port, self.proc, self.log)

    def stop(self) -> int:
        return stop_daemon(self.proc) if self.proc is not None else 0


@pytest.fixture(scope="module")
def daemon(library, request):
    model, trained = recognizer_model(request)
    d = PlayerDaemon(library, model)
    d.trained = trained
    d.start("--input", "none")
    yield d
    d.stop()


@pytest.fixture(scope="module")
def browser(command_wav, tmp_path_factory):
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (scripts/setup.sh installs the chromium and chromium-driver packages)")
    driver, service = start_browser(tmp_path_factory.mktemp("browser"), command_wav)
    try:
        yield driver
    finally:
        quit_browser(driver, service)


def start_browser(root: Path, command_wav: SimpleNamespace | None = None):
    """Headless Chromium through Debian's chromedriver (its profile in `root`) -> (driver, service)."""
    profile = tempfile.mkdtemp(prefix="chromium-", dir=root)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--no-first-run", "--mute-audio", f"--user-data-dir={profile}",
                "--window-size=1000,1400", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                "--autoplay-policy=no-user-gesture-required"):  # voice commands start music without a click
        options.add_argument(arg)
    if command_wav is not None:
        options.add_argument(f"--use-file-for-fake-audio-capture={command_wav.path}%noloop")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER))  # an explicit driver: Selenium Manager downloads nothing
    driver = Chromium(service=service, options=options)
    driver.command_executor.client_config.timeout = COMMAND_TIMEOUT_S  # bounded calls, retried (Chromium.execute)
    return driver, service


def quit_browser(driver, service) -> None:
    driver.quit()  # chromedriver closes chromium; Selenium waits for chromedriver to exit
    if service.process is not None and service.process.poll() is None:
        service.process.kill()
        service.process.wait()


@pytest.fixture
def page(browser, daemon):
    """The browser showing the daemon's player, connected."""
    if not browser.current_url.startswith(daemon.http):
        browser.get(daemon.http + "/")
    wait_connected(browser)
    return browser


class ScriptedDaemon:
    """A stand-in daemon: serves the real web player and, on its WebSocket, sends what a test tells it."""

    def __init__(self, media: Path):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="scripted-daemon", daemon=True)
        self.connections: queue.Queue = queue.Queue()
        self.received: queue.Queue = queue.Queue()

        async def media_path(song: str) -> Path | None:
            return media if song in ("s1", "s2") else None

        self.routes = HttpRoutes(AccessPolicy(ServerConfig()), DaemonMetrics(), lambda: {"status": "ok"}, media=media_path)

    async def _handle(self, ws) -> None:
        self.connections.put(ws)
        async for message in ws:
            self.received.put(message)

    def start(self) -> "ScriptedDaemon":
        async def listen():
            return await serve(self._handle, "127.0.0.1", 0, process_request=self.routes)

        self.thread.start()
        self.server = self.call(listen())
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/"
        return self

    def call(self, coro, timeout_s: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def next_connection(self):
        return self.connections.get(timeout=WAIT_S)

    def send(self, ws, *frames) -> None:
        for frame in frames:
            self.call(ws.send(frame if isinstance(frame, (str, bytes)) else json.dumps(frame)))

    def stop(self) -> None:
        self.server.close()
        try:  # a page that does not answer the closing handshake (a frozen browser) holds the connection up to
            self.call(self.server.wait_closed(), timeout_s=30)  # websockets' close timeout, more on a starved machine
        except TimeoutError:
            pass  # the stand-in's loop is stopped anyway
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def scripted(library):
    s = ScriptedDaemon(library.files["Rainy Window"]).start()
    yield s
    s.stop()


def hello(**fields) -> dict:
    event = p.Hello(session="c1", server="scripted/0", instance="i1",
                    config={"mode": "always", "sample_rate_hz": RATE_HZ, "feedback_kinds": list(p.FEEDBACK_KINDS)},
                    snapshot={"status": None, "transcript": None, "intent": None, "recommendations": None}).to_dict()
    return {**event, **fields}


def scripted_item(song: str, title: str) -> dict:
    return {"id": song, "title": title, "artist": "Script", "album": None, "year": None, "genres": [], "score": 0.5,
            "reasons": ["scripted"], "playable": True, "media_url": f"/media/{song}"}


# ---------------------------------------------------------------- tests: the real daemon


def test_a_browser_that_answers_nothing_for_a_while_is_asked_again(page):
    """A starved machine: chromedriver frozen for longer than one command may wait. The page is read again
    once it answers, within the test's bounded wait, rather than failing after one long call."""
    driver_pid = page.service.process.pid
    before = page.retries
    os.kill(driver_pid, signal.SIGSTOP)
    thaw = threading.Timer(COMMAND_TIMEOUT_S + 2, os.kill, (driver_pid, signal.SIGCONT))
    thaw.start()
    try:
        assert wait_until(page, lambda d: d.execute_script("return document.title"), "the page was not read after the freeze")
    finally:
        thaw.cancel()
        os.kill(driver_pid, signal.SIGCONT)
    assert page.retries > before  # it was asked again, not waited for in one call


def test_page_loads_connected_and_is_keyboard_and_screen_reader_ready(page):
    assert page.title == "Music assistant"
    assert text(page, "listening").startswith("No local microphone")
    assert text(page, "server").startswith("assistant/")
    live = page.execute_script("return Object.fromEntries([...document.querySelectorAll('[aria-live]')].map((e) => [e.id, e.getAttribute('aria-live')]))")
    assert live["final"] == "polite" and live["intent"] == "polite" and live["songs-summary"] == "polite"
    assert live["partial"] == "off"  # partials every 160 ms would drown a screen reader; the final is announced
    assert page.find_element(By.ID, "connection").get_attribute("role") == "status"
    assert page.execute_script("return document.querySelectorAll('[onclick], div[tabindex], span[tabindex]').length") == 0
    # Tab reaches the text box first, then its button; the focused button has a visible outline
    page.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    ActionChains(page).send_keys(Keys.TAB).perform()
    assert page.execute_script("return document.activeElement.id") == "query"
    ActionChains(page).send_keys(Keys.TAB).perform()
    focus = page.execute_script("const s = getComputedStyle(document.activeElement); return [document.activeElement.id, s.outlineStyle, s.outlineWidth]")
    assert focus == ["send", "solid", "3px"]
    severe = [entry for entry in page.get_log("browser") if entry["level"] == "SEVERE"]
    assert not severe, severe
    assert problems(page) == []


def test_typed_request_renders_recommendations_with_reasons_and_plays(page, library, daemon):
    before = stats(page)["events"].get("recommendations", 0)
    ask(page, "play rainy window by test quartet")
    wait_events(page, "recommendations", before, "no recommendations for a typed request")
    items = song_items(page)
    assert items[0]["title"] == "Rainy Window" and items[0]["artist"] == "Test Quartet" and items[0]["playable"]
    assert all(item["reasons"] for item in items), items
    assert "play" in text(page, "intent") and "Rainy Window" in text(page, "intent")
    assert text(page, "songs-summary").startswith(f"{len(items)} songs (play)")
    # the first playable song plays, and the daemon is told (feedback "played")
    rainy = library.ids["Rainy Window"]
    wait_until(page, lambda d: not audio_state(d)["paused"], "the requested song did not start playing")
    assert audio_state(page)["src"].endswith(f"/media/{urllib.parse.quote(rainy)}")
    assert text(page, "now-playing") == "Playing: “Rainy Window” by Test Quartet"
    wait_until(page, lambda d: any(e.kind == "played" and e.song_id == rainy for e in store_events(daemon.db)),
               "the played song was not recorded in the preference store")
    # a title that is HTML is shown as text, never run
    ask(page, "play songs by mallory")
    wait_until(page, lambda d: any(i["title"] == HOSTILE_TITLE for i in song_items(d)), "the list did not show Mallory's song")
    assert page.execute_script("return window.__pwned") is None
    assert page.find_elements(By.CSS_SELECTOR, "#songs img") == []


def test_like_and_skip_reach_the_preference_store(page, library, daemon):
    ask(page, "play something sad by adele")
    wait_until(page, lambda d: any(i["artist"] == "Adele" for i in song_items(d)), "no Adele songs for the request")
    adele = [i for i in song_items(page) if i["artist"] == "Adele"]
    liked, skipped = adele[0]["id"], adele[1]["id"]
    press(page, liked, "like", Keys.ENTER)  # buttons work from the keyboard
    wait_until(page, lambda d: song_button(d, liked, "like").get_attribute("aria-pressed") == "true", "the like was not acknowledged")
    press(page, skipped, "skip")
    wait_until(page, lambda d: text(d, "notice").startswith("Skipped"), "the skip was not acknowledged")
    events = store_events(daemon.db)
    assert any(e.kind == "liked" and e.song_id == liked for e in events), events
    assert any(e.kind == "skipped" and e.song_id == skipped for e in events), events
    assert text(page, "notice").startswith(f"Skipped “{adele[1]['title']}”")


def test_bad_media_paths_are_refused_and_the_page_says_why(page, library, daemon):
    page.find_element(By.ID, "stop").click()
    outside = library.ids["Secret Song"]
    code, body = http_get(f"{daemon.http}/media/{outside}")
    assert code == 404 and body == f"song {outside} has no playable file in the configured music folders\n"
    for bad in ("..", "..%2F..%2Fetc%2Fpasswd", "%2e%2e", "..%2Fmusic%2F0.ogg", urllib.parse.quote(str(library.outside), safe="")):
        code, body = http_get(f"{daemon.http}/media/{bad}")
        assert code == 404 and ("no such song" in body or "no playable file" in body), (bad, body)
    code, headers, body = http_fetch(f"{daemon.http}/media/{library.ids['Sunny Steps']}")
    assert code == 200 and headers["Content-Type"] == "audio/ogg" and body.startswith(b"OggS")
    # a song from outside the music folders is listed, not playable
    ask(page, "play secret song by outsider")
    wait_until(page, lambda d: (i := song_items(d)) and i[0]["title"] == "Secret Song", "the outside song was not listed")
    assert song_items(page)[0]["playable"] is False
    # a file that disappears after the catalog was read: refused, and the page shows the daemon's reason
    ask(page, "recommend songs by test quartet")
    gone = library.ids["Gone Tomorrow"]
    wait_until(page, lambda d: any(i["id"] == gone and i["playable"] for i in song_items(d)), "Gone Tomorrow was not listed as playable")
    library.files["Gone Tomorrow"].unlink()
    assert http_get(f"{daemon.http}/media/{gone}")[0] == 404
    press(page, gone, "play")  # a song this browser never loaded, so nothing is cached
    message = f"cannot play “Gone Tomorrow”: the daemon answered 404: song {gone} has no playable file in the configured music folders"
    wait_until(page, lambda d: message in problems(d), "the missing file was not reported on the page")
    assert text(page, "connection") == "Connected" and stats(page)["uncaught"] == 0


def test_spoken_style_player_intents_act_on_the_player(page, library, daemon):
    ask(page, "play rainy window by test quartet")
    wait_until(page, lambda d: not audio_state(d)["paused"] and audio_state(d)["src"].endswith(urllib.parse.quote(library.ids["Rainy Window"])),
               "the song did not play")
    ask(page, "pause")
    wait_until(page, lambda d: audio_state(d)["paused"], "pause did not pause")
    ask(page, "turn the volume down")
    wait_until(page, lambda d: abs(audio_state(d)["volume"] - 0.9) < 1e-6, "volume down did not lower the volume")
    assert text(page, "volume") == "Volume 90 %"
    ask(page, "resume")
    wait_until(page, lambda d: not audio_state(d)["paused"], "resume did not play")
    ask(page, "next song")  # the daemon answers with what to play instead, and records the skip
    wait_until(page, lambda d: not audio_state(d)["src"].endswith(urllib.parse.quote(library.ids["Rainy Window"])),
               "next did not change the song")
    assert any(e.kind == "skipped" and e.song_id == library.ids["Rainy Window"] for e in store_events(daemon.db))
    ask(page, "stop")
    wait_until(page, lambda d: audio_state(d)["paused"] and audio_state(d)["time"] == 0, "stop did not stop")
    ask(page, "turn the volume up")
    wait_until(page, lambda d: abs(audio_state(d)["volume"] - 1.0) < 1e-6, "volume up did not raise the volume")


def test_questions_about_the_playing_song_are_answered_on_the_page(page, library, daemon):
    rainy = library.ids["Rainy Window"]
    ask(page, "play rainy window by test quartet")
    # the daemon answers about the latest `played` report: wait for this song's (earlier tests played it, and others, too)
    wait_until(page, lambda d: (played := [e for e in store_events(daemon.db) if e.kind == "played"]) and played[0].song_id == rainy,
               "the played song was not recorded")
    ask(page, "who sings this")
    wait_until(page, lambda d: text(d, "answer") == "“Rainy Window” is by Test Quartet.".replace("“", '"').replace("”", '"'),
               "no answer to 'who sings this'")
    ask(page, "what genre is this")
    wait_until(page, lambda d: "folk" in text(d, "answer"), "no answer to 'what genre is this'")
    assert "what is playing" in text(page, "intent")
    # an exclusion is shown with the slots and honoured by the list
    ask(page, "play test quartet but not rainy window")
    wait_until(page, lambda d: "not" in text(d, "intent") and "Rainy Window" in text(d, "intent"), "the exclusion was not shown")
    wait_until(page, lambda d: song_items(d) and all(i["id"] != rainy for i in song_items(d)), "the excluded song was listed")


def test_readable_at_phone_width(page):
    page.set_window_size(375, 812)
    try:
        width = wait_until(page, lambda d: d.execute_script("return window.innerWidth <= 375 && window.innerWidth"), "the window did not narrow")
        overflow = page.execute_script("return document.documentElement.scrollWidth")
        assert overflow <= width, f"the page is {overflow} px wide in a {width} px window"
        font = page.execute_script("return parseFloat(getComputedStyle(document.getElementById('final')).fontSize)")
        assert font >= 16
        screenshot(page, "web-player-375px.png")
    finally:
        page.set_window_size(1000, 1400)


def test_microphone_button_streams_the_browser_microphone(page, daemon, command_wav):
    if command_wav is None:
        pytest.skip("espeak-ng is not installed (scripts/setup.sh installs it)")

    async def watch() -> list[dict]:
        async with connect(daemon.http.replace("http", "ws") + "/ws") as ws:
            page.find_element(By.ID, "mic").click()
            events = []
            while not events or events[-1]["type"] != "transcript.final":
                msg = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
                if msg.get("source", "").startswith("remote-"):
                    events.append(msg)
            return events

    before = stats(page)["events"].get("transcript.final", 0)
    events = asyncio.run(watch())
    assert page.find_element(By.ID, "mic").get_attribute("aria-pressed") == "true"
    assert text(page, "mic-state").startswith("Streaming as remote-")
    wait_events(page, "transcript.final", before, "the page did not show the final transcript")
    final = events[-1]
    end = next(e for e in events if e["type"] == "vad.end")
    assert [e["type"] for e in events if e["type"] != "transcript.partial"] == ["vad.start", "vad.end", "transcript.final"]
    if final["accepted"]:
        assert text(page, "final") == final["text"]
    else:
        assert "ignored" in text(page, "final")
    # 16 kHz really: the endpointer measures the command as long as it is
    assert abs(end["duration_ms"] / 1000 - command_wav.speech_s) < 0.4, (end, command_wav.speech_s)
    if daemon.trained:
        from rapidfuzz import fuzz

        print(f"heard through the browser microphone: {final['text']!r}")
        assert fuzz.ratio(final["text"], COMMAND) >= 60, final["text"]
    page.find_element(By.ID, "mic").click()
    wait_until(page, lambda d: text(d, "mic-state") == "Microphone off", "the microphone did not stop")
    assert page.find_element(By.ID, "mic").get_attribute("aria-pressed") == "false"


@pytest.mark.parametrize("rate_hz", [48000, 44100])
def test_worklet_resamples_to_16_khz_pcm(page, rate_hz):
    """The AudioWorklet itself, offline: 1 s at 48 or 44.1 kHz in, 20 ms frames of 16 kHz int16 out, aliasing filtered."""
    result = page.execute_async_script("""
        const [rate, done] = [arguments[0], arguments[arguments.length - 1]];
        (async () => {
          const ctx = new OfflineAudioContext(1, rate, rate);
          await ctx.audioWorklet.addModule('/static/mic-worklet.js');
          const node = new AudioWorkletNode(ctx, 'pcm-frames', {processorOptions: {targetRateHz: 16000}});
          const frames = [];
          node.port.onmessage = (m) => frames.push(Array.from(new Int16Array(m.data)));
          const buffer = ctx.createBuffer(1, rate, rate), x = buffer.getChannelData(0);
          for (let i = 0; i < rate; i++) x[i] = 0.4 * Math.sin(2 * Math.PI * 440 * i / rate) + 0.4 * Math.sin(2 * Math.PI * 12000 * i / rate);
          const source = ctx.createBufferSource();
          source.buffer = buffer;
          source.connect(node);
          node.connect(ctx.destination);
          source.start();
          await ctx.startRendering();
          const until = performance.now() + 20000;  // the frames' messages may still be on their way; only a failure waits long
          while (frames.length < 49 && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
          await new Promise((r) => setTimeout(r, 200));  // a 50th frame, when the input gives one
          done({frames});
        })().catch((e) => done({error: String(e)}));""", rate_hz)
    assert "error" not in result, result
    frames = result["frames"]
    assert {len(f) for f in frames} == {320} and 49 <= len(frames) <= 50  # 20 ms frames, 1 s of audio
    pcm = np.concatenate([np.asarray(f, dtype=np.float32) / 32767 for f in frames])[1600:]  # past the filter's start
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    freqs = np.fft.rfftfreq(len(pcm), 1 / RATE_HZ)
    assert abs(freqs[spectrum.argmax()] - 440) < 5
    assert abs(np.sqrt(2 * np.mean(pcm ** 2)) - 0.4) < 0.03  # the 440 Hz tone keeps its level
    alias_db = 20 * np.log10(spectrum.max() / spectrum[np.abs(freqs - 4000) < 30].max())  # 12 kHz folds to 4 kHz
    assert alias_db > 40, alias_db


def test_reconnects_after_restart_and_shows_a_spoken_command(page, daemon, command_wav):
    """SIGTERM the daemon, start it again on the same port with a spoken command as its file input."""
    page.find_element(By.ID, "clear-errors").click()  # earlier tests' problems
    assert not page.find_element(By.ID, "errors-box").is_displayed()
    instance = page.execute_script("return window.__player.state.instance")
    before = stats(page)["events"]
    assert daemon.stop() == 0
    wait_until(page, lambda d: text(d, "connection").startswith("Disconnected:") and d.find_element(By.ID, "reconnect").is_displayed(),
               "the page did not show the disconnection")
    if command_wav is None:
        daemon.start("--input", "none")
    else:  # the file plays once the first client (the page, reconnecting) is there
        daemon.start("--input", str(command_wav.path), "--wait-for-client")
    wait_connected(page)
    assert page.execute_script("return window.__player.state.instance") != instance
    assert text(page, "notice") == "The daemon restarted."
    if command_wav is None:
        pytest.skip("reconnected; the spoken part needs espeak-ng (scripts/setup.sh installs it)")
    wait_events(page, "transcript.final", before.get("transcript.final", 0), "the spoken command's final transcript did not reach the page",
                timeout_s=3 * WAIT_S)  # a daemon just started (its second pass warming up) on a busy machine can be slow

    async def results() -> dict:
        """What the daemon says it heard and answered: the snapshot a new client gets, completed."""
        async with connect(daemon.http.replace("http", "ws") + "/ws") as ws:
            snap = json.loads(await ws.recv())["snapshot"]
            if snap["transcript"]["accepted"] and not snap["intent"]:
                snap["intent"] = await recv(ws, "intent")
            ranked = snap["intent"] and snap["intent"]["name"] in ("play", "recommend", "similar", "next")
            if ranked and (snap["recommendations"] or {}).get("utterance") != snap["intent"]["utterance"]:
                snap["recommendations"] = await recv(ws, "recommendations")
            return snap

    snap = asyncio.run(results())
    assert snap["transcript"]["source"] == "file" and snap["transcript"]["accepted"], snap["transcript"]
    seen = stats(page)["events"]
    for kind in ("vad.start", "transcript.partial", "vad.end", "transcript.final"):
        assert seen.get(kind, 0) > before.get(kind, 0), (kind, before, seen)
    assert text(page, "final") == snap["transcript"]["text"]
    assert text(page, "partial") == "–"  # cleared by the final
    assert snap["intent"] and snap["intent"]["utterance"] == snap["transcript"]["utterance"]  # every accepted command is parsed
    name = snap["intent"]["name"]
    wait_until(page, lambda d: text(d, "intent").startswith(name.replace("_", " ") if name != "none" else "not understood"),
               "the spoken command's intent is not on the page")
    if daemon.trained:  # the shipped recognizer hears what was said, and the answer is about it
        from rapidfuzz import fuzz

        heard = snap["transcript"]["text"]
        assert fuzz.ratio(heard, COMMAND) >= 60, heard
        assert name in ("play", "recommend"), snap["intent"]
        assert snap["recommendations"]["utterance"] == snap["transcript"]["utterance"]
        assert "Adele" in [i["artist"] for i in snap["recommendations"]["items"][:3]], snap["recommendations"]["items"]
    if snap["recommendations"] and snap["recommendations"]["utterance"] == snap["transcript"]["utterance"]:
        wait_until(page, lambda d: [i["id"] for i in song_items(d)] == [i["id"] for i in snap["recommendations"]["items"]],
                   "the spoken command's recommendations are not on the page")
    print(f"heard from the file input: {snap['transcript']['text']!r} -> {snap['intent'] and snap['intent']['name']}")
    assert problems(page) == []
    screenshot(page, "web-player.png")


def test_every_event_of_several_requests_reaches_the_screen(page):
    """Behaviour only: how long each event takes to show is measured by bench/web_player_latency.py."""
    before = stats(page)
    for request in REQUESTS:
        ask(page, request)
    summary = wait_events(page, "recommendations", before["events"].get("recommendations", 0) + len(REQUESTS) - 1,
                          "not every request was answered")
    shown = summary["handle"]["count"] - before["handle"]["count"]  # events put in the DOM
    assert shown >= 2 * len(REQUESTS), summary  # an intent and the recommendations for each request, at least
    wait_until(page, lambda d: stats(d)["frame"]["count"] - before["frame"]["count"] >= shown,
               "a frame was not drawn after every event")
    assert summary["uncaught"] == 0 and problems(page) == []


# ---------------------------------------------------------------- tests: a scripted, misbehaving daemon


def test_malformed_events_and_a_mismatched_daemon_are_shown_as_errors(browser, scripted):
    browser.get(scripted.url)
    ws = scripted.next_connection()
    scripted.send(ws, hello())
    wait_connected(browser)
    item = {"id": "x", "title": "T", "artist": "A", "reasons": ["r"]}
    scripted.send(ws, "{not json",
                  {"type": "recommendations", "v": 1, "utterance": "u1", "intent": "play", "items": "oops"},
                  {"type": "intent", "v": 1, "utterance": "u1"},
                  {"type": "transcript.final", "v": 2, "source": "mic", "utterance": "u1", "text": "x", "command": "x", "accepted": True},
                  b"\x00\x01binary",
                  {"type": "recommendations", "v": 1, "utterance": "u1", "intent": "play", "items": [dict(item, reasons=[1])]},
                  {"type": "a.later.event", "v": 1, "anything": True},  # unknown types are ignored, as protocol v1 says
                  {"type": "transcript.final", "v": 1, "source": "mic", "utterance": "u2", "text": "still alive", "command": "still alive",
                   "accepted": True, "audio_ms": 900, "a_later_field": 1})
    wait_until(browser, lambda d: text(d, "final") == "still alive", "a good event after bad ones was not shown")
    shown = problems(browser)
    expected = ["not JSON", "field 'items' should be a list", "'intent': field 'name' should be a string", "protocol v2",
                "unexpected binary frame", "reasons should be strings"]
    for part in expected:
        assert any(part in message for message in shown), (part, shown)
    assert len(shown) == len(expected), shown
    assert text(browser, "connection") == "Connected" and stats(browser)["uncaught"] == 0
    # the daemon goes away and comes back speaking protocol v2
    scripted.call(ws.close(1001, "restarting"))
    ws = scripted.next_connection()
    scripted.send(ws, hello(v=2))
    wait_until(browser, lambda d: text(d, "connection") == "Incompatible daemon", "a v2 hello did not mark the daemon incompatible")
    assert any("this page speaks v1" in message for message in problems(browser))
    assert stats(browser)["uncaught"] == 0
    scripted.call(ws.close(1001, "done"))


def test_music_ducks_while_someone_speaks_and_follows_player_intents(browser, scripted):
    browser.get(scripted.url)
    ws = scripted.next_connection()
    scripted.send(ws, hello())
    wait_connected(browser)

    def intent(name: str, utterance: str) -> dict:
        return {"type": "intent", "v": 1, "utterance": utterance, "name": name, "slots": {}}

    scripted.send(ws, {"type": "recommendations", "v": 1, "utterance": "q1", "intent": "play",
                       "items": [scripted_item("s1", "One"), scripted_item("s2", "Two")]})
    wait_until(browser, lambda d: not audio_state(d)["paused"] and audio_state(d)["src"].endswith("/media/s1"), "play did not start s1")
    assert json.loads(scripted.received.get(timeout=WAIT_S)) == {"type": "feedback", "v": 1, "id": "w1", "song_id": "s1", "kind": "played"}
    scripted.send(ws, {"type": "vad.start", "v": 1, "source": "mic", "utterance": "u1", "speech_start_ms": 100})
    wait_until(browser, lambda d: abs(audio_state(d)["volume"] - 0.25) < 1e-6, "vad.start did not duck the music")
    assert text(browser, "listening") == "Hearing speech (mic)"
    scripted.send(ws, {"type": "transcript.partial", "v": 1, "source": "mic", "utterance": "u1", "text": "pau", "audio_ms": 160})
    wait_until(browser, lambda d: text(d, "partial") == "pau", "the partial transcript was not shown")
    scripted.send(ws, {"type": "vad.end", "v": 1, "source": "mic", "utterance": "u1", "speech_end_ms": 900, "duration_ms": 800,
                       "reason": "silence", "accepted": True})
    wait_until(browser, lambda d: abs(audio_state(d)["volume"] - 1.0) < 1e-6, "vad.end did not restore the volume")
    scripted.send(ws, intent("pause", "u1"))
    wait_until(browser, lambda d: audio_state(d)["paused"], "pause did not pause")
    scripted.send(ws, intent("volume_down", "u2"), intent("volume_down", "u3"), intent("resume", "u4"))
    wait_until(browser, lambda d: not audio_state(d)["paused"] and abs(audio_state(d)["volume"] - 0.8) < 1e-6, "volume_down / resume")
    scripted.send(ws, {"type": "vad.start", "v": 1, "source": "mic", "utterance": "u5", "speech_start_ms": 100})
    wait_until(browser, lambda d: abs(audio_state(d)["volume"] - 0.2) < 1e-6, "ducking does not follow the lowered volume")
    scripted.send(ws, intent("next", "u5"), {"type": "recommendations", "v": 1, "utterance": "u5", "intent": "next",
                                            "items": [scripted_item("s2", "Two")]})
    wait_until(browser, lambda d: audio_state(d)["src"].endswith("/media/s2"), "next did not play the next song")
    scripted.call(ws.close(1001, "restarting"))  # a lost vad.end: the reconnect restores the volume
    ws = scripted.next_connection()
    scripted.send(ws, hello())
    wait_until(browser, lambda d: abs(audio_state(d)["volume"] - 0.8) < 1e-6, "the volume stayed ducked after a reconnect")
    scripted.send(ws, intent("previous", "u6"))
    wait_until(browser, lambda d: audio_state(d)["src"].endswith("/media/s1"), "previous did not go back")
    scripted.send(ws, intent("stop", "u7"))
    wait_until(browser, lambda d: audio_state(d)["paused"] and audio_state(d)["time"] == 0, "stop did not stop")
    assert problems(browser) == [] and stats(browser)["uncaught"] == 0
    scripted.call(ws.close(1001, "done"))
