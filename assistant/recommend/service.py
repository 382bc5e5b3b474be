"""The recommender's public API: one object the daemon and the CLI call.

    from assistant.config import load_config
    from assistant.recommend.service import RecommendService

    service = RecommendService(load_config(path))   # once: catalog, parser, model, index, preference DB
    intent, rec = service.handle_text("play something sad by adele", user="alice", now_playing=None)
    intent.to_dict()  # {"intent": "play", "slots": {"mood": "sad", "artist": "adele"}, "confidence": 0.9, "text": ...,
                      #  "matches": {"artist": {"id": null, "name": "Adele", "score": 1.0, "confident": true, ...}}}
    rec.to_dict()     # {...intent fields..., "items": [{"id", "title", "artist", "score", "reasons"}, ...]}
    service.feedback("alice", "s1a2b3c4d5e6f", "liked")   # requested | played | liked | disliked | skipped
    service.close()

`handle_text(text, user=None, now_playing=None, k=None) -> (IntentResult, Recommendation | None)`:
the recommendation is None for player controls (pause, resume, stop, previous,
volume_up, volume_down, what_is_playing), for like/dislike, and for "none".
"play", "recommend", "similar" and "next" return a ranked list ("next": what
to play instead of `now_playing`), without what the request excludes
("anything but country"). Side effects, so the daemon needs no logic of its
own: like/dislike record `liked`/`disliked` for `now_playing` (when given, and
when the request is about it: "i don't like adele" only counts against an
Adele song); next records `skipped` for `now_playing` (likewise: "don't play
adele" skips only Adele); a play request that names a song records
`requested` for it. The player reports `played` through `feedback`.

`answer(intent, now_playing)` answers a what_is_playing request ("who sings
this", "what album is this from") from the catalog: about the song it names,
else the one playing.

Construction takes seconds (model load, index build on first run with a
progress bar when `progress=True`); every call after that is milliseconds.
Call it from one worker thread; concurrent calls are safe too (the parser and
ranker are read-only, the preference store serializes its own access).
Errors meant for the user are `AssistantError`s with one-line messages.
"""

from __future__ import annotations

import logging
import threading
from typing import Sequence

from assistant.config import Config
from assistant.errors import AssistantError, StorageError
from assistant.nlu.gazetteer import Gazetteer
from assistant.nlu.intent import IntentResult
from assistant.nlu.parser import make_parser
from assistant.recommend.answer import Answer, answer_question
from assistant.recommend.arrays import CatalogArrays
from assistant.recommend.catalog import Catalog, load_catalog
from assistant.recommend.embedder import Embedder, make_embedder
from assistant.recommend.index_store import Manifest, ensure_index
from assistant.recommend.preferences import EVENT_KINDS, PreferenceStore
from assistant.recommend.profile import UserProfile, build_profile
from assistant.recommend.ranker import Ranker, RankOptions, Recommendation
from assistant.recommend.song import Song

log = logging.getLogger(__name__)

RANKED_INTENTS = frozenset({"play", "recommend", "similar", "next"})
MAX_CACHED_PROFILES = 256  # users whose profile is kept warm; others are rebuilt from the store when they come back
REQUESTED_MIN_SCORE = 0.85  # a play request "names" a song when the title matched at least this well


class RecommendService:
    """Catalog + intent parser + semantic index + ranker + preference store, warm."""

    def __init__(self, config: Config, *, extra_catalogs: Sequence[str] = (), catalog: Catalog | None = None,
                 embedder: Embedder | None = None, store: PreferenceStore | None = None, progress: bool = False):
        self.config = config
        rc = config.recommend
        self.catalog = catalog if catalog is not None else load_catalog(rc, extra_catalogs)
        self.parser = make_parser(config, Gazetteer.from_songs(self.catalog.songs))
        self.embedder = embedder if embedder is not None else make_embedder(rc.embed_model)
        self.index, self.manifest, self.index_built = ensure_index(self.catalog, self.embedder, rc, progress=progress)
        self.arrays = CatalogArrays(self.catalog)
        self.ranker = Ranker(self.catalog, self.arrays, self.index, self.embedder,
                             RankOptions(k=rc.k, candidates=rc.candidates, max_per_artist=rc.max_per_artist,
                                         exclude_recent=rc.exclude_recent), gazetteer=self.parser.gazetteer)
        self.store = store if store is not None else PreferenceStore.from_config(config.preferences)
        self._profiles: dict[str, tuple[int, UserProfile]] = {}
        self._lock = threading.Lock()
        self.ranker.warm()  # loads the model and embeds the mood phrases

    # ------------------------------------------------------------------ API
    def parse(self, text: str) -> IntentResult:
        """Intent and slots of a command text (see assistant.nlu.parser)."""
        return self.parser.parse(text)

    def recommend(self, intent: IntentResult, user: str | None = None, now_playing: str | None = None,
                  k: int | None = None) -> Recommendation:
        """Ranked songs for a parsed request and this user's profile."""
        if k is not None and not 1 <= k <= 100:
            raise AssistantError(f"k = {k}: expected 1 to 100 songs")
        return self.ranker.rank(intent, self.profile(user), now_playing, k)

    def handle_text(self, text: str, user: str | None = None, now_playing: str | None = None,
                    k: int | None = None) -> tuple[IntentResult, Recommendation | None]:
        """Parse a command, apply its feedback side effects, and rank songs when it asks for them."""
        user = self._user(user)
        intent = self.parse(text)
        playing = now_playing if now_playing and now_playing in self.catalog else None
        about = playing is not None and self._about(intent, self.catalog.get(playing))
        if intent.intent in ("like", "dislike") and about:
            self.feedback(user, playing, "liked" if intent.intent == "like" else "disliked")
        if intent.intent == "next" and about:
            self._record_aside(user, playing, "skipped")
        if intent.intent not in RANKED_INTENTS:
            return intent, None
        rec = self.recommend(intent, user, playing, k)
        if intent.intent == "play" and rec.items:
            top = rec.items[0].song
            named = any(e.kind == "track" and e.score >= REQUESTED_MIN_SCORE and top.id in e.song_ids
                        for e in intent.entities)
            if named:
                self._record_aside(user, top.id, "requested")
        return intent, rec

    def _record_aside(self, user: str, song_id: str, kind: str) -> None:
        """A side effect of a request (`requested`, `skipped` by "next"): a store that cannot write it does not
        cost the listener the answer; it is logged."""
        try:
            self.feedback(user, song_id, kind)
        except StorageError as exc:
            log.warning("%s for %s not recorded: %s", kind, song_id, exc)

    def answer(self, intent: IntentResult, now_playing: str | None = None) -> Answer | None:
        """The answer to a what_is_playing request; None for any other intent."""
        if intent.intent != "what_is_playing":
            return None
        named = [self.catalog.get(s) for e in intent.entities if e.kind == "track" for s in e.song_ids]
        named = [s for s in named if s is not None]
        if named:
            by = {s for e in intent.entities if e.kind == "artist" for s in e.song_ids}
            song = max(named, key=lambda s: (s.id in by, s.popularity or 0.0))
        else:
            song = self.catalog.get(now_playing) if now_playing else None
        return answer_question(intent.question or "song", song)

    @staticmethod
    def _about(intent: IntentResult, song: Song | None) -> bool:
        """Whether feedback in a request concerns this song: it names nothing, or names this song,
        its artist, or a genre the song has."""
        if song is None:
            return False
        named = (*intent.entities, *intent.excluded)
        genres = [g for g in (intent.slots.get("genre"), intent.exclude.get("genre")) if g]
        if not named and not genres and not intent.exclude:
            return True
        if any(song.id in e.song_ids for e in named):
            return True
        own = {g.lower() for g in song.genres}
        return any(g.lower() in own for g in genres)

    def feedback(self, user: str | None, song_id: str, kind: str) -> None:
        """Record requested / played / liked / disliked / skipped for a catalog song."""
        user = self._user(user)
        if kind not in EVENT_KINDS:
            raise AssistantError(f"feedback kind {str(kind)[:40]!r} is not known; expected one of {', '.join(EVENT_KINDS)}")
        song = self.catalog.get(song_id) if isinstance(song_id, str) else None
        if song is None:
            raise AssistantError(f"song id {str(song_id)[:40]!r} is not in the catalog; expected an id from a "
                                 "recommendation's items")
        self.store.add_event(user, song.id, kind, title=song.title, artist=song.artist)

    def profile(self, user: str | None) -> UserProfile:
        """The user's taste profile (rebuilt only when they have new events)."""
        user = self._user(user)
        marker = self.store.last_event_id(user)
        with self._lock:
            cached = self._profiles.get(user)
        if cached and cached[0] == marker:
            return cached[1]
        events = self.store.events(user, limit=self.config.preferences.profile_events)
        profile = build_profile(user, events, self.catalog, self.index.vectors,
                                half_life_days=self.config.preferences.half_life_days,
                                recent_n=self.config.recommend.exclude_recent)
        with self._lock:
            self._profiles.pop(user, None)
            self._profiles[user] = (marker, profile)  # newest last
            while len(self._profiles) > MAX_CACHED_PROFILES:  # user ids come from clients: the cache stays bounded
                del self._profiles[next(iter(self._profiles))]
        return profile

    def song(self, song_id: str) -> Song | None:
        return self.catalog.get(song_id)

    def info(self) -> dict:
        """Catalog and index facts for status pages and logs."""
        m: Manifest = self.manifest
        return {"songs": len(self.catalog), "index": m.kind, "model": m.model, "dimension": m.dimension,
                "index_built_now": self.index_built, "recall_at_10": m.recall_at_10,
                "preferences_db": str(self.store.path)}

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "RecommendService":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _user(self, user: str | None) -> str:
        return user if user else self.config.preferences.default_user
