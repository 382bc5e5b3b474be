"""Ranking: parsed request + user profile -> a diverse, explained list of songs.

Candidates come from every signal that can name songs: catalog entities the
parser resolved (and their runner-up matches), semantic neighbours of the
request in the faiss index, the songs nearest the user's taste vector, the best
fits of an asked mood, the most popular songs of an asked genre or era, and
the most popular songs overall as a fallback.

Each candidate gets a score that adds weighted parts, each in 0..1 (the
profile part in -1..1):

    entity      how closely the heard name matches the song's title/artist/album
    semantic    cosine of the song's embedding with the request (free text, mood
                phrase, the songs asked about or "more like" which)
    mood        fit of valence/energy/danceability/tempo/acousticness to the mood
    genre, year whether the song has the asked genre / is from the asked era
    profile     taste vector cosine + genre and artist affinities of the user
    popularity  Spotify popularity (more weight when "most popular" is asked)

Disliked songs and songs heard in the last `exclude_recent` events are left out
unless asked for by name. What the request rules out ("anything but country",
"play adele but not hello": `IntentResult.exclude` / `excluded`) is always
left out: the excluded names' songs, songs of an excluded genre (or a genre it
covers), era, or mood (fit above MOOD_EXCLUDE_FIT). Several moods ("slow sad"
-> "calm, sad") are blended. The list is then picked greedily with a per-artist
cap and a penalty on near-duplicates (maximal marginal relevance), and each
song carries the reasons that contributed most to its score.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from assistant.asr.text import normalize_text
from assistant.nlu.gazetteer import Gazetteer
from assistant.nlu.intent import IntentResult
from assistant.nlu.years import year_bounds
from assistant.recommend.arrays import CatalogArrays
from assistant.recommend.catalog import Catalog
from assistant.recommend.embedder import Embedder
from assistant.recommend.mood import describe_fit
from assistant.recommend.profile import UserProfile
from assistant.recommend.song import Song
from assistant.recommend.vector_index import VectorIndex

# How a request's mood is put into words for the embedder (cached per mood).
MOOD_PHRASES: dict[str, str] = {
    "sad": "sad melancholic slow songs", "happy": "happy cheerful upbeat songs",
    "energetic": "energetic intense fast songs", "calm": "calm mellow relaxing acoustic songs",
    "romantic": "romantic love songs", "angry": "angry aggressive intense songs",
    "party": "danceable party songs",
}
SORT_POPULAR = frozenset({"most popular", "popular", "top", "best", "greatest", "good", "biggest", "famous",
                          "top five", "top ten", "top twenty", "top fifty", "top hundred", "top one hundred",
                          "top forty", "hottest", "classic", "classics"})
SORT_RECENT = frozenset({"newest", "latest", "new", "last", "recent", "most recent", "brand new", "fresh"})
SORT_OLD = frozenset({"oldest", "old", "earliest", "first"})
REFERENCE_SONGS = 5  # an artist asked about is represented by their most popular songs
ALTERNATIVE_SHARE = 0.8  # runner-up name matches count this much of their score
ARTIST_ENTITY_SHARE = 0.9  # "play adele": each Adele song scores this much of the name match
BOTH_NAMED_BONUS = 0.3  # title and artist both match the same song
LOOSE_MIN_SCORE = 0.45  # the recommender's own search for weakly heard names goes this low...
LOOSE_SHARE = 0.9  # ...and counts its hits this much
LOOSE_LIMIT = 8  # names kept per span and kind
LOOSE_SKIP_ABOVE = 0.9  # spans the parser resolved at least this well need no second search
UNSURE_SHARE = 0.9  # a match the parser is not confident in (EntityMatch.confident) counts this much, as a similar name
NAMED_MIN_SCORE = 0.8  # a song named this clearly is suggested even if just heard or disliked
MOOD_EXCLUDE_FIT = 0.65  # "not sad": songs fitting the mood at least this well are left out
WEAK_REFERENCE_SHARE = 0.5  # "next" / "sad songs by X": the referenced songs hint at what to play, weakly
MAX_REASONS = 4
PROFILE_FEATURE_WEIGHT = 0.4  # share of the liked songs' audio-feature centroid in the profile score
SEMANTIC_REASON_MIN = 0.2  # a semantic match is named as a reason above this cosine...
SEMANTIC_REASON_SHARE = 0.85  # ...and within this share of the request's best cosine


@dataclass(frozen=True)
class RankWeights:
    entity: float = 1.5
    semantic: float = 1.0
    mood: float = 1.0
    genre: float = 0.6
    year: float = 0.6
    profile: float = 0.5
    profile_alone: float = 1.0  # profile weight when the request names nothing ("recommend something")
    popularity: float = 0.15
    sort: float = 0.5  # popularity's extra weight with nothing asked for (cold start)
    sort_asked: float = 1.0  # "newest", "oldest", "most popular": the order asked for, as a rank among the songs asked
    diversity: float = 0.15  # penalty per unit of cosine similarity to an already chosen song


@dataclass(frozen=True)
class RankOptions:
    k: int = 10
    candidates: int = 200
    max_per_artist: int = 2
    exclude_recent: int = 20
    weights: RankWeights = field(default_factory=RankWeights)


@dataclass(frozen=True)
class RankedSong:
    song: Song
    score: float
    reasons: tuple[str, ...]

    def to_dict(self) -> dict:
        out = {"id": self.song.id, "title": self.song.title, "artist": self.song.artist,
               "score": round(float(self.score), 4), "reasons": list(self.reasons)}
        if self.song.source:
            out["source"] = self.song.source
        return out


@dataclass(frozen=True)
class Recommendation:
    intent: IntentResult
    items: tuple[RankedSong, ...]
    note: str = ""  # a remark for the user ("no taste profile yet: popular songs")

    def to_dict(self) -> dict:
        out = {**self.intent.to_dict(), "items": [i.to_dict() for i in self.items]}
        if self.note:
            out["note"] = self.note
        return out


class _Parts:
    """Score parts for the candidate rows; reasons are worded only for the songs picked."""

    def __init__(self, n: int):
        self.total = np.zeros(n, dtype=np.float32)
        self._parts: list[tuple[float, np.ndarray, object, float]] = []

    def add(self, weight: float, values: np.ndarray, reason_fn=None, min_value: float = 0.5) -> None:
        values = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0)
        self.total += weight * values
        if reason_fn is not None:
            self._parts.append((weight, values, reason_fn, min_value))

    def reasons(self, i: int, limit: int) -> tuple[str, ...]:
        """Reasons for candidate i, the largest contributions first."""
        found = [(weight * values[i], fn(i)) for weight, values, fn, min_value in self._parts
                 if values[i] >= min_value]
        texts = [text for _, text in sorted(found, key=lambda t: -t[0]) if text]
        return tuple(dict.fromkeys(texts))[:limit]


class Ranker:
    """Scores and picks songs; thread-safe (no mutable state besides caches)."""

    def __init__(self, catalog: Catalog, arrays: CatalogArrays, index: VectorIndex, embedder: Embedder | None,
                 options: RankOptions = RankOptions(), gazetteer: Gazetteer | None = None):
        self.catalog = catalog
        self.gazetteer = gazetteer
        self.arrays = arrays
        self.index = index
        self.embedder = embedder
        self.options = options
        self._mood_vectors: dict[str, np.ndarray] = {}

    def warm(self) -> None:
        """Embed the mood phrases once (loads the model); requests then never embed a mood."""
        if self.embedder is not None and not self._mood_vectors:
            vectors = self.embedder.encode(list(MOOD_PHRASES.values()))
            self._mood_vectors = dict(zip(MOOD_PHRASES, vectors))

    # ------------------------------------------------------------------ API
    def rank(self, intent: IntentResult, profile: UserProfile | None = None, now_playing: str | None = None,
             k: int | None = None) -> Recommendation:
        k = k or self.options.k
        w = self.options.weights
        profile = profile or UserProfile(user="")
        slots = intent.slots
        note = ""

        # 1. Songs named in the request, and the songs a "similar"/"next" request refers to.
        entity = self._entity_scores(intent) if intent.intent != "similar" else {}
        reference: list[int] = []
        if intent.intent == "similar":
            reference = self._reference_rows(intent, now_playing, profile)
            if not reference:
                note = "nothing is playing and nothing was named: suggestions from your taste instead"
        elif intent.intent == "next" and now_playing and self.catalog.position(now_playing) is not None:
            reference = [self.catalog.position(now_playing)]
        elif entity:
            reference = sorted(entity, key=lambda r: -entity[r][0])[:REFERENCE_SONGS]

        # 2. The request as one vector: free text + mood phrase + referenced songs.
        moods = _moods(slots.get("mood", ""))
        mood = ", ".join(moods) if moods else None
        parts = []
        if intent.query and self.embedder is not None:
            parts.append(self.embedder.encode_cached(intent.query))
        known = [self._mood_vectors[m] for m in moods if m in self._mood_vectors]
        if known:
            parts.append(np.mean(known, axis=0))
        if reference:
            ref = self.index.vectors(reference).mean(axis=0)
            described = intent.intent != "similar" and bool(parts or {"genre", "year"} & set(slots))
            # "next", or "sad songs by adele": the referenced songs only hint; the description leads.
            weak = intent.intent == "next" or described
            parts.append(ref * (WEAK_REFERENCE_SHARE if weak else 1.0))
        query = _unit(np.sum(parts, axis=0)) if parts else None

        # 3. Candidates.
        n_cand = self.options.candidates
        pools = [np.fromiter(entity, dtype=np.int64, count=len(entity)), self.arrays.popular_order[:n_cand]]
        if query is not None:
            pools.append(self._neighbours(query, n_cand))
        content = bool(entity or reference or intent.query or {"mood", "genre", "year"} & set(slots))
        if profile.vector is not None:
            pools.append(self._neighbours(profile.vector, n_cand if not content else n_cand // 2))
        genre = slots.get("genre")
        if genre:
            pools.append(self.arrays.genre_rows(genre))
        years = year_bounds(slots.get("year"))  # 1996, {"from": 1990, "to": 1999} (or spoken words)
        if years:
            pools.append(self.arrays.year_rows(*years))
        for m in moods:
            pools.append(self.arrays.mood_rows(m))
        rows = np.unique(np.concatenate([p for p in pools if len(p)]))
        rows = self._exclude(rows, entity, profile, reference, now_playing, intent)
        rows = self._without_excluded(rows, intent)
        if years and not any(e.confident for e in intent.entities) and len(rows):
            # "songs from 2004 to 2008": a filter (a named song of another year still comes first: soft then)
            inside = (self.arrays.years[rows] >= years[0]) & (self.arrays.years[rows] <= years[1])
            if inside.any():
                rows = rows[inside]
            else:
                era = f"{years[0]}" if years[0] == years[1] else f"{years[0]}-{years[1]}"
                note = f"no songs from {era} in your library; {note}" if note else f"no songs from {era} in your library"
        if len(rows) == 0:
            return Recommendation(intent, (), note or "no songs left to suggest")

        # 4. Scores.
        vectors = self.index.vectors(rows)
        p = _Parts(len(rows))
        songs = _LazySongs(self.catalog, rows)
        if entity:
            keys = np.fromiter(entity, dtype=np.int64, count=len(entity))
            values = np.fromiter((v[0] for v in entity.values()), dtype=np.float32, count=len(entity))
            order = np.argsort(keys)
            pos = np.clip(np.searchsorted(keys[order], rows), 0, len(keys) - 1)
            found = keys[order][pos] == rows
            p.add(w.entity, np.where(found, values[order][pos], 0.0),
                  lambda i: entity.get(int(rows[i]), (0.0, ""))[1], min_value=0.01)
        if query is not None:
            label = self._semantic_label(intent, reference)
            semantic = np.clip(vectors @ query, 0.0, 1.0)
            # Cosines of short requests with long documents are modest; explain the closest ones.
            floor = max(SEMANTIC_REASON_MIN, SEMANTIC_REASON_SHARE * float(semantic.max(initial=0.0)))
            p.add(w.semantic, semantic, lambda i: label, min_value=floor)
        if moods:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # songs with no features: NaN for every mood
                fit = np.nanmean([self.arrays.mood_fit(m, rows) for m in moods], axis=0)
            p.add(w.mood, fit, lambda i: f"{mood}: {describe_fit(songs[i], moods[-1])}".rstrip(": "), min_value=0.6)
        if genre:
            values = self.arrays.genre_score(self.arrays.genre_matches(genre), rows)
            p.add(w.genre, values, lambda i: f"genre {genre}")
        if years:
            yr = self.arrays.years[rows]
            p.add(w.year, ((yr >= years[0]) & (yr <= years[1])).astype(np.float32),
                  lambda i: f"from {int(self.arrays.years[rows[i]])}")
        if not profile.empty:
            weight = w.profile if content else w.profile_alone
            p.add(weight, self._profile_scores(profile, rows, vectors), lambda i: self._profile_reason(profile, rows[i]),
                  min_value=0.25)
        sort = _sort_kind(slots.get("sort"))
        cold_start = not content and profile.empty
        pop_weight = w.popularity + (w.sort if cold_start else 0.0)
        p.add(pop_weight, self.arrays.popularity[rows],
              lambda i: f"popular ({songs[i].popularity:.0f}/100)" if songs[i].popularity is not None else "",
              min_value=0.8)
        sort_key = self._sort_key(sort, rows) if sort else None
        if sort_key is not None:
            # Among the songs asked about (the artist's, the era's), the order asked for decides.
            named = [r for r, (score, _) in entity.items() if score >= NAMED_MIN_SCORE]
            focus = np.isin(rows, np.asarray(named, dtype=np.int64)) if named else None
            p.add(w.sort_asked, _percentile(sort_key, focus), lambda i: self._sort_reason(sort, songs[i]),
                  min_value=0.75)
        if cold_start and not note:
            note = "no taste profile yet: popular songs; like or skip songs to personalize"
        if intent.exclude:
            left_out = "left out: " + ", ".join(f"{k} {v}" for k, v in intent.exclude.items())
            note = f"{note}; {left_out}" if note else left_out

        unknown = _not_in_catalog(intent)
        if genre and not self.arrays.genre_matches(genre) and intent.intent in ("play", "recommend"):
            lacking = f'no genre "{genre}" in your library'  # "banda cuisillos": heard, and said to be unknown
            unknown = f"{unknown}; {lacking}" if unknown else lacking
        if unknown:
            note = f"{unknown}; {note}" if note else unknown

        # 5. Diverse pick.
        asked_artists = {e.name.lower() for e in intent.entities if e.kind == "artist" and e.confident}
        top_n = _top_n(slots.get("sort"))
        chosen = self._pick(rows, p.total, vectors, min(k, top_n) if top_n else k, asked_artists)
        if sort_key is not None:  # shown in the order asked for: newest, oldest or most popular first
            inside = focus if focus is not None else np.ones(len(rows), dtype=bool)
            chosen = sorted(chosen, key=lambda i: (not inside[i], -sort_key[i]))
        first = (unknown,) if unknown else ()  # said on every song: none of them is the name asked for
        items = tuple(RankedSong(songs[i], float(p.total[i]),
                                 first + (p.reasons(i, MAX_REASONS - len(first)) or ("popular pick",)))
                      for i in chosen)
        return Recommendation(intent, items, note)

    # -------------------------------------------------------------- helpers
    def _entity_scores(self, intent: IntentResult) -> dict[int, tuple[float, str]]:
        """Row -> (score, reason) for songs the request names.

        Evidence per song is the best title similarity and the best artist (or
        album) similarity, from the parser's resolved entities, its runner-ups,
        and a lenient search of every heard name span the parser could not
        resolve confidently (a badly misheard name still finds candidates).
        A song whose title and artist both match scores their mean plus a bonus.
        """
        title: dict[int, tuple[float, str]] = {}
        credit: dict[int, tuple[float, str]] = {}  # artist or album evidence

        def put(table: dict, rows, score: float, reason: str) -> None:
            for r in rows:
                if score > table.get(r, (0.0, ""))[0]:
                    table[r] = (score, reason)

        def add(e, share: float, tentative: bool, similar: bool = False) -> None:
            rows = [r for r in (self.catalog.position(s) for s in e.song_ids) if r is not None]
            exact = e.how == "exact" or normalize_text(e.name) == e.heard
            heard = "" if exact else f' (heard "{e.heard}", {e.score:.0%} match)'
            if similar:  # "no songs by nora quill in your library": this is only a name like it
                heard = f" ({e.score:.0%} match)"
            maybe = "similar name: " if similar else "maybe " if tentative else ""
            if e.kind == "track":
                put(title, rows, e.score * share, f'{maybe}title "{e.name}"{heard}')
            elif e.kind == "artist":
                put(credit, rows, e.score * share, f"{maybe}by {e.name}{heard}")
            elif e.kind == "album":
                put(credit, rows, e.score * share, f'{maybe}album "{e.name}"{heard}')

        for e in intent.entities:
            if e.confident:
                add(e, 1.0, False)
            else:  # the name heard is not in the catalog; its closest name is only a suggestion
                add(e, UNSURE_SHARE, True, similar=True)
        for e in intent.alternatives:
            add(e, ALTERNATIVE_SHARE, True)
        for e in self._loose_matches(intent):
            add(e, LOOSE_SHARE, True)
        out: dict[int, tuple[float, str]] = {}
        for r in set(title) | set(credit):
            t, t_reason = title.get(r, (0.0, ""))
            c, c_reason = credit.get(r, (0.0, ""))
            if t and c:
                out[r] = ((t + c) / 2 + BOTH_NAMED_BONUS * min(t, c), f"{t_reason}, {c_reason}")
            elif t:
                out[r] = (t, t_reason)
            else:
                out[r] = (c * ARTIST_ENTITY_SHARE, c_reason)
        return out

    def _loose_matches(self, intent: IntentResult) -> list:
        """Catalog names near heard spans the parser resolved weakly or not at all."""
        if self.gazetteer is None:
            return []
        sure = {e.heard for e in intent.entities if e.score >= LOOSE_SKIP_ABOVE}
        spans = [v for k, v in intent.heard.items() if k in ("artist", "track", "album")]
        if intent.query and intent.intent in ("play", "similar"):
            spans.append(intent.query)
        if intent.content and intent.intent in ("play", "similar") and not sure:
            spans.append(intent.content)  # the request's words, whatever the tagger made of them
        found = []
        for span in dict.fromkeys(spans):
            if span in sure:
                continue
            for kind in ("track", "artist", "album"):
                found.extend(self.gazetteer.match(span, kind, limit=LOOSE_LIMIT, min_score=LOOSE_MIN_SCORE))
        return found

    def _sort_key(self, sort: str, rows: np.ndarray) -> np.ndarray | None:
        """Larger first: year for "newest", minus year for "oldest" (unknown years last), popularity."""
        if sort == "popular":
            return self.arrays.popularity[rows].astype(np.float32)
        yr = self.arrays.years[rows].astype(np.float32)
        known = yr > 0
        if not known.any():
            return None
        return np.where(known, yr if sort == "recent" else -yr, -np.inf).astype(np.float32)

    @staticmethod
    def _sort_reason(sort: str, song: Song) -> str:
        if sort == "popular":
            return f"popular ({song.popularity:.0f}/100)" if song.popularity is not None else ""
        return f"{'recent' if sort == 'recent' else 'older'}: {song.year}" if song.year else ""

    def _reference_rows(self, intent: IntentResult, now_playing: str | None, profile: UserProfile) -> list[int]:
        """Songs "more like this" means: the named ones, else the playing one, else the last heard."""
        rows: list[int] = []
        for e in intent.entities:
            found = [r for r in (self.catalog.position(s) for s in e.song_ids) if r is not None]
            found.sort(key=lambda r: -self.arrays.popularity[r])
            rows.extend(found[:1] if e.kind == "track" else found[:REFERENCE_SONGS])
        if rows:
            return list(dict.fromkeys(rows))
        for song_id in (now_playing, profile.last_song):
            if song_id and self.catalog.position(song_id) is not None:
                return [self.catalog.position(song_id)]
        return []

    def _neighbours(self, vector: np.ndarray, n: int) -> np.ndarray:
        _, rows = self.index.search(vector, n)
        rows = rows[0]
        return rows[rows >= 0].astype(np.int64)

    def _exclude(self, rows: np.ndarray, entity: dict, profile: UserProfile, reference: list[int],
                 now_playing: str | None, intent: IntentResult) -> np.ndarray:
        named = {r for r, (score, _) in entity.items() if score >= NAMED_MIN_SCORE}
        drop: set[int] = set()
        for song_id in profile.disliked:
            r = self.catalog.position(song_id)
            if r is not None and r not in named:
                drop.add(r)
        for song_id in profile.recent[: self.options.exclude_recent]:
            r = self.catalog.position(song_id)
            if r is not None and r not in named:
                drop.add(r)
        if intent.intent in ("similar", "next"):
            drop.update(reference)
            if now_playing and self.catalog.position(now_playing) is not None:
                drop.add(self.catalog.position(now_playing))
        if not drop:
            return rows
        return rows[~np.isin(rows, np.fromiter(drop, dtype=np.int64, count=len(drop)))]

    def _without_excluded(self, rows: np.ndarray, intent: IntentResult) -> np.ndarray:
        """Rows minus what the request rules out (names, genre, era, mood)."""
        if not intent.exclude or len(rows) == 0:
            return rows
        keep = np.ones(len(rows), dtype=bool)
        drop_ids = {s for e in intent.excluded for s in e.song_ids}
        if drop_ids:
            keep &= ~np.isin(rows, [r for r in (self.catalog.position(s) for s in drop_ids) if r is not None])
        if not intent.excluded and self.gazetteer is not None:  # a name the parser could not resolve
            for kind in ("artist", "track", "album"):
                if kind in intent.exclude:
                    ids = {s for h in self.gazetteer.match(normalize_text(intent.exclude[kind]), kind, limit=3,
                                                           min_score=NAMED_MIN_SCORE) for s in h.song_ids}
                    rows_out = [r for r in (self.catalog.position(s) for s in ids) if r is not None]
                    keep &= ~np.isin(rows, rows_out)
        genre = intent.exclude.get("genre")
        if genre:
            matches = self.arrays.genre_matches(genre)
            if matches:
                keep &= self.arrays.genre_score(matches, rows) <= 0
        years = year_bounds(intent.exclude.get("year"))
        if years:
            yr = self.arrays.years[rows]
            keep &= ~((yr >= years[0]) & (yr <= years[1]))
        for m in _moods(intent.exclude.get("mood", "")):
            keep &= ~(np.nan_to_num(self.arrays.mood_fit(m, rows), nan=0.0) >= MOOD_EXCLUDE_FIT)
        return rows[keep]

    def _semantic_label(self, intent: IntentResult, reference: list[int]) -> str:
        if reference:
            ref = self.catalog.songs[reference[0]]
            if intent.intent not in ("similar", "next") and any(e.kind == "artist" for e in intent.entities) \
                    and not any(e.kind == "track" for e in intent.entities):
                return f"sounds like {ref.artist}"
            return f'sounds like "{ref.title}" by {ref.artist}'
        if intent.query:
            return f'close to "{intent.query}"'
        if intent.slots.get("mood"):
            return f"{intent.slots['mood']} in feel"
        return "similar to what you asked for"

    def _profile_scores(self, profile: UserProfile, rows: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        out = np.zeros(len(rows), dtype=np.float32)
        if profile.vector is not None:
            out += 0.5 * (vectors @ profile.vector)
        if profile.genres:
            out += 0.3 * self.arrays.genre_score(profile.genres, rows)
        if profile.artists:
            out += 0.2 * np.array([profile.artists.get(self.arrays.artist_keys[r], 0.0) for r in rows],
                                  dtype=np.float32)
        if profile.features is not None:
            # 1 for the liked mood exactly, about 1/3 for a random song; unknown features count as average.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # songs with no features: NaN, handled below
                gap = np.nanmean(np.abs(self.arrays.features[rows] - profile.features), axis=1)
            out += PROFILE_FEATURE_WEIGHT * np.nan_to_num(1.0 - 2.0 * gap, nan=0.33)
        return out

    def _profile_reason(self, profile: UserProfile, row: int) -> str:
        artist = self.arrays.artist_keys[row]
        if profile.artists.get(artist, 0.0) > 0.3:
            return f"you like {profile.artist_names.get(artist, artist)}"
        liked = [g for g in self.arrays.genre_keys[row] if profile.genres.get(g, 0.0) > 0.3]
        if liked:
            return f"matches your taste for {liked[0]}"
        return "close to songs you liked"

    def _pick(self, rows: np.ndarray, total: np.ndarray, vectors: np.ndarray, k: int,
              asked_artists: set[str]) -> list[int]:
        """Greedy MMR with a per-artist cap; returns candidate indices, best first."""
        order = np.argsort(-total, kind="stable")
        pool = list(order[: max(k * 10, 50)])
        chosen: list[int] = []
        per_artist: dict[str, int] = {}
        penalty_w = self.options.weights.diversity
        while pool and len(chosen) < k:
            if chosen:
                sims = vectors[pool] @ vectors[chosen].T
                adjusted = total[pool] - penalty_w * sims.max(axis=1)
            else:
                adjusted = total[pool]
            best_pos = None
            for pos in np.argsort(-adjusted, kind="stable"):
                i = pool[pos]
                artist = self.arrays.artist_keys[rows[i]]
                song_artist = self.catalog.songs[rows[i]].artist.lower()
                capped = per_artist.get(artist, 0) >= self.options.max_per_artist
                if capped and not any(a in song_artist for a in asked_artists):
                    continue
                best_pos = pos
                break
            if best_pos is None:
                break
            i = pool.pop(int(best_pos))
            chosen.append(i)
            artist = self.arrays.artist_keys[rows[i]]
            per_artist[artist] = per_artist.get(artist, 0) + 1
        return chosen


class _LazySongs:
    """songs[i] for candidate i, looked up only when a reason needs it."""

    def __init__(self, catalog: Catalog, rows: np.ndarray):
        self._songs, self._rows = catalog.songs, rows

    def __getitem__(self, i: int) -> Song:
        return self._songs[int(self._rows[i])]

    def __bool__(self) -> bool:
        return len(self._rows) > 0


def _not_in_catalog(intent: IntentResult) -> str:
    """ "no songs by nora quill in your library" for the names asked for that the catalog lacks; "" if none."""
    if intent.intent not in ("play", "recommend", "similar"):
        return ""
    said = []
    for kind, heard in intent.unknown_names().items():
        if kind == "artist":
            said.append(f"no songs by {heard} in your library")
        elif kind == "track":
            said.append(f'no song "{heard}" in your library')
        else:
            said.append(f'no album "{heard}" in your library')
    if isinstance(intent.slots.get("playlist"), str) and intent.slots["playlist"]:
        said.append(f'no playlist "{intent.slots["playlist"]}" in your library')  # the catalog has songs only
    return "; ".join(said)


def _sort_kind(value) -> str:
    """ "recent", "old", "popular" or "" for a sort slot ("newest", "the oldest", "top fifty")."""
    if not isinstance(value, str):
        return ""
    text = normalize_text(value)
    if text in SORT_RECENT:
        return "recent"
    if text in SORT_OLD:
        return "old"
    if text in SORT_POPULAR or text.startswith("top "):
        return "popular"
    return ""


_COUNT_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20}


def _top_n(value) -> int | None:
    """N of "top N" when it is a short list (top five -> 5); None otherwise ("top fifty" is a large list)."""
    if not isinstance(value, str):
        return None
    words = normalize_text(value).split()
    if len(words) == 2 and words[0] == "top":
        return _COUNT_WORDS.get(words[1])
    return None


def _percentile(values: np.ndarray, focus: np.ndarray | None) -> np.ndarray:
    """Each value's rank among the focus rows (all rows when None), 0..1; rows outside the focus 0."""
    out = np.zeros(len(values), dtype=np.float32)
    idx = np.flatnonzero(focus) if focus is not None and focus.any() else np.arange(len(values))
    if len(idx) == 0:
        return out
    finite = np.isfinite(values[idx])
    order = np.argsort(np.argsort(np.where(finite, values[idx], -np.inf), kind="stable"), kind="stable")
    ranks = order.astype(np.float32) / max(len(idx) - 1, 1)
    out[idx] = np.where(finite, ranks, 0.0)
    return out


def _moods(value: str) -> list[str]:
    """Canonical moods of a mood slot ("calm, sad" -> ["calm", "sad"])."""
    return [m.strip() for m in value.split(",") if m.strip()]


def _unit(v: np.ndarray) -> np.ndarray | None:
    norm = float(np.linalg.norm(v))
    return (v / norm).astype(np.float32) if norm > 0 else None
