"""The intent parser: learned slots and intents, combined with the rule grammar.

    parser = IntentParser(Gazetteer.from_songs(songs))   # loads the shipped model (assistant/nlu/model/)
    parser.parse("play something sad by adele but not hello")
    # IntentResult(intent="play", slots={"mood": "sad", "artist": "adele"}, exclude={"track": "Hello"}, ...)
    # (names as heard; `.matches` has {"artist": {"name": "Adele", "score": 1.0, "confident": True, ...}})

For one command text:

1. odd input is answered at once: empty, no letters (emoji, punctuation),
   longer than a command can be -> "none" with a `note`;
2. the rule grammar (`rules.RuleParser`, without catalog look-ups) gives its
   intent, one feature among many;
3. a CRF (`model.SlotTagger`) tags the tokens with Snips slots, from words,
   neighbours, lexicon phrases and exact catalog names (`features.py`);
4. a logistic-regression classifier (`model.IntentClassifier`) over words,
   character trigrams, the rule intent and catalog/lexicon hits gives the
   intent and a calibrated confidence; out-of-domain requests ("set an alarm")
   come out "none";
5. rule intents that measured better than the classifier (`RULE_INTENTS`:
   player controls, volume, questions, "more like this", complaints and
   "play X"; chosen on held-out folds of the training data) override it when
   they fire; a "play X" whose X is exactly a catalog name is a play request
   even when the classifier doubts it ("play rock show");
6. spans are corrected from context (`structure.py`: "R.E.M." whole, "the
   record X" an album, "by iron and wine" one credit); a request whose verb
   was misheard ("lay adele hello") is read as catalog names among fillers
   (`lenient.py`); an untagged "play X" keeps X as the artist heard;
7. slot spans inside a negation scope become exclusions (`negation.py`);
   names are resolved against the catalog with fuzzy + phonetic matching, so
   "someone like yu by adel" is "Someone Like You" by "Adele"; moods map to
   the canonical moods ("slow sad" -> "calm, sad"); what_is_playing requests
   get the `question` they ask (artist, album, year, genre or song);
8. name slots hold what was heard, their catalog matches beside them
   (`IntentResult.matches`); years become numbers or {"from", "to"}.

`IntentParser(gazetteer, learned=False)` is the rule grammar alone. Building a
parser loads the model (tens of milliseconds); `parse` is then pure and
thread-safe, well under 5 ms on the default catalog.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from assistant.asr.text import normalize_text
from assistant.nlu import lexicon as L
from assistant.nlu.datasets import spans as tag_spans
from assistant.nlu.features import CUE_WORDS, NEGATION_WORDS, Featurizer
from assistant.nlu.gazetteer import Gazetteer
from assistant.nlu.intent import CONTENT_INTENTS, NAME_SLOTS, EntityMatch, IntentResult
from assistant.nlu.lenient import find_request
from assistant.nlu.model import NluModel
from assistant.nlu.negation import excluded_spans, negated_positions
from assistant.nlu.structure import CLAUSE_WORDS, album_after_cue, keep_whole, whole_names, without_possessive
from assistant.nlu.years import find_years, is_number_phrase, year_slot
from assistant.nlu.rules import (_AFTER_VERB, _NON_MUSIC_ONLY_RE, _PLAY_RE, PLAY_VERBS, STRONG_PLAY_VERBS,
                                 UNRESOLVED_MAX_WORDS, WHOLE_MATCH_MIN, ParserOptions, RuleParser)
from assistant.recommend.matcher import spoken_forms

NAME_KINDS = ("artist", "track", "album")
ALTERNATIVES = 4  # runner-up catalog names kept per span for the recommender
ALTERNATIVE_MARGIN = 0.1  # runners-up may score this much below the acceptance threshold
ARTIST_AGREES_BONUS = 0.08  # a title by the artist already named gains this much
OTHER_KIND_MIN_SCORE = 0.9  # a span the tagger gave one name kind is taken as another only this close
UNTAGGED_MAX_WORDS = 6
_PLAYLIST_WORDS = frozenset({"playlist", "playlists", "list", "mix", "mixtape"})
# Words that make a request's content something other than one name ("my play list", "entire library").
_NOT_NAME_WORDS = frozenset({"playlist", "playlists", "list", "library", "album", "albums", "music", "song", "songs",
                             "track", "tracks", "cover", "covers", "radio", "station", "recent", "recently", "added",
                             "latest", "newest", "entire", "shuffle", "collection", "most", "top", "billboard",
                             "listened", "played", "purchased", "favorited", "favorite", "favourite", "random"})
_ORDINALS = frozenset({"first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
                       "last", "latest", "newest", "new", "debut", "best", "greatest"})  # "afi's fourth album"
# Words that are titles too, but beside other words of a request say how, not what ("play only songs by X").
_NOT_A_NAME_ALONE = frozenset({"only", "random", "best", "live", "again", "more", "all"})
_NAME_GLUE = frozenset({"the", "and", "of", "a", "n", "in", "on", "to"})  # everyday words inside names
_GAME_OPENER = re.compile(r"^(?:let's|lets|let us|do you want to|wanna) play\b")
_CREDIT_JOINERS = frozenset({"and", "of", "the", "n", "with"})  # words inside one artist credit ("iron and wine")
_CREDIT_ENDS = frozenset({"on", "from", "in", "please", "now", "for", "but", "except", "off", "using", "via"})
WHOLE_MAX_WORDS = 12
RESCUED_CONFIDENCE = 0.5  # a "play X" the classifier took for out-of-domain, where X is exactly a catalog name
LENIENT_CONFIDENCE = 0.6  # a near-miss request ("lay adele hello"): catalog names, fillers and a cue (lenient.py)
SINGLE_WORD_NAME_MIN = 0.8  # an untagged single word of a request is a catalog name this close ("eminen")
EXACT_NAME_MIN = 0.99  # a catalog match this close is the name itself
COMMON_RUN_MIN = 0.9  # an untagged run of common words (model.common_words) names a catalog entry this closely
PHONETIC_WORD_MIN = 0.9  # a single untagged word names a catalog entry by sound only this closely ("weekend")  # a longer run of untagged words is not looked up as one name
MAX_INPUT_CHARS_FACTOR = 4  # raw text beyond this many times max_text_chars is refused before normalizing
# Intents whose rule, when it fires, overrides the classifier (measured: bench/nlu_accuracy.py --ablation).
RULE_INTENTS: frozenset[str] = frozenset({"volume_up", "volume_down", "what_is_playing", "similar", "pause",
                                          "resume", "previous", "next", "stop", "dislike", "play"})
# A rule intent overrides the classifier only if the classifier gives it at least this probability
# ("save my opinion on the currently playing song" is not a question however the rule reads it).
RULE_MIN_PROBABILITY = 0.03  # chosen on a held-out fold of HWU64 train + SLURP devel (bench/nlu_select.py)
# Words left over from a request that say nothing about the songs wanted.
_QUERY_STOP = frozenset(
    set(L.CONTENT_FILLERS) | CUE_WORDS | NEGATION_WORDS
    | {w for p in (*L.LEADING_FILLERS, *L.REQUEST_OPENERS, *PLAY_VERBS, *L.TRAILING_FILLERS) for w in p.split()}
    | {"about", "recommend", "suggest", "find", "give", "pick", "choose", "show", "can", "could", "you", "me",
       "should", "what", "i'd", "i'm", "some", "something", "anything", "else", "other", "than", "ones", "by",
       "playing", "played", "listening", "hear", "put", "like", "similar", "same", "as", "too", "do", "dont",
       "don't", "want", "wanna", "get", "songs", "tunes", "music", "please", "okay", "ok", "hey", "hi", "hello"})
# Words at the edges of a request's content that are not part of a name ("play some X", "play X please").
_CONTENT_EDGE = frozenset({"a", "an", "the", "some", "me", "us", "please", "now", "song", "songs", "music", "track",
                           "by", "for", "again", "right", "thanks", "then", "something", "anything"})
_ARTICLE_LEADS = "|".join(("play", "some", "by", "hear", "to", "of", "on"))  # words before "a NAME" (_with_article)
_GREETINGS = frozenset(w for p in L.LEADING_FILLERS for w in p.split())
_QUESTION_STOP = frozenset({"who", "whom", "whose", "sings", "sang", "sung", "sing", "singing", "what's", "whats",
                            "what", "is", "was", "this", "that", "album", "when", "did", "come", "came", "out", "year",
                            "genre", "which", "wrote", "write", "performs", "performed", "song", "track", "called",
                            "name", "title", "released", "release", "from", "on", "of", "does", "do", "who's"})
_QUESTIONS = (
    ("album", re.compile(r"\b(?:album|record|lp)\b")),
    ("year", re.compile(r"\b(?:when|what year|which year|how old|released?|come out|came out|recorded)\b")),
    ("genre", re.compile(r"\b(?:genre|kind of music|type of music|style of music|what style)\b")),
    ("artist", re.compile(r"\b(?:who|whom|whose|which (?:artist|singer|band|group)|artist|singer|band)\b")),
)


@dataclass(frozen=True)
class _Span:
    kind: str
    start: int
    end: int
    text: str


class IntentParser:
    """Text -> IntentResult with the learned model (default) or the rule grammar alone."""

    def __init__(self, gazetteer: Gazetteer | None = None, options: ParserOptions = ParserOptions(), *,
                 learned: bool = True, model: NluModel | str | None = None,
                 rule_intents: frozenset[str] = RULE_INTENTS, rule_min_probability: float | None = None):
        self.gazetteer = gazetteer
        self.options = options
        self.learned = learned
        self.rule_intents = frozenset(rule_intents)
        self.rule_min_probability = RULE_MIN_PROBABILITY if rule_min_probability is None else rule_min_probability
        self.rules = RuleParser(gazetteer, options)  # with the catalog: the rules-only parser
        self._bare_rules = RuleParser(None, options)  # no look-ups: a cheap feature for the classifier
        self.model = None
        if learned:
            self.model = model if isinstance(model, NluModel) else NluModel.load(model)
        genres = [normalize_text(g) for g in gazetteer.names("genre")] if gazetteer is not None else []
        # The forms people say ("Give Me Everything (feat. Ne-Yo)" -> "give me everything"), as in training.
        names = {k: [f for n in gazetteer.names(k) for f in spoken_forms(n)] for k in NAME_KINDS} if gazetteer else {}
        rule_slots = bool(self.model.meta.get("rule_slots")) if self.model is not None else False
        self._features = Featurizer(names, genres, rule_slots)
        self._common = self.model.common_words if self.model is not None else frozenset()
        # One-word names a near-miss request takes only beside their artist ("adele hello", not "sad").
        self._weak_words = frozenset(self._common | set(L.MOOD_WORDS) | set(genres) | _QUERY_STOP)

    # ------------------------------------------------------------------ public
    def parse(self, text: str) -> IntentResult:
        """Parse one command; never raises on odd input (empty, emoji, long, non-English)."""
        raw = "" if text is None else str(text)
        limit = self.options.max_text_chars
        if len(raw) > limit * MAX_INPUT_CHARS_FACTOR:
            return IntentResult("none", confidence=1.0, text="",
                                note=f"text too long ({len(raw)} characters); a command is at most {limit}")
        norm = normalize_text(raw)
        if len(norm) > limit:
            return IntentResult("none", confidence=1.0, text=norm[:limit],
                                note=f"text too long ({len(norm)} characters); a command is at most {limit}")
        if not norm:
            note = "empty text" if not raw.strip() else "no words in the text (only symbols, emoji or punctuation)"
            return IntentResult("none", confidence=1.0, text="", note=note)
        result = self.rules.parse(norm) if not self.learned else self._parse_learned(norm, whole_names(raw))
        return _with_years(_with_article(_as_heard(result)), self.gazetteer.years if self.gazetteer is not None else None)

    def analyze(self, text: str) -> dict:
        """Everything the learned parser saw, for `assistant parse --explain` and debugging."""
        norm = normalize_text(str(text or ""))[: self.options.max_text_chars]
        tokens = norm.split()
        if not tokens or self.model is None:
            return {"tokens": tokens}
        tags, rule, probs = self._tag_and_classify(norm, tokens)
        order = np.argsort(-probs)[:4]
        return {"tokens": tokens, "tags": tags, "rule_intent": rule.intent,
                "intents": {self.model.classifier.intents[i]: round(float(probs[i]), 3) for i in order}}

    # --------------------------------------------------------------- learned
    def _tag_and_classify(self, norm: str, tokens: list[str]):
        a = self._features.analyze(tokens, self._bare_rules.parse(norm))
        tags, _ = self.model.tagger.tag(self._features.tokens(a))
        probs = self.model.classifier.probabilities(self._features.intent(a, tags))
        return tags, a.rule, probs

    def _parse_learned(self, norm: str, wholes: list[list[str]] = ()) -> IntentResult:
        tokens = norm.split()
        tags, rule, probs = self._tag_and_classify(norm, tokens)
        intents = self.model.classifier.intents
        best = int(np.argmax(probs))
        intent, confidence = intents[best], float(probs[best])
        rule_p = float(probs[intents.index(rule.intent)]) if rule.intent in intents else 0.0
        if rule.intent in self.rule_intents and rule.intent != intent and rule_p >= self.rule_min_probability:
            intent = rule.intent
            confidence = max(rule_p, rule.confidence)
        tagged = album_after_cue(keep_whole(tag_spans(tokens, tags), tokens, list(wholes), self.options.unresolved_kind),
                                 tokens)  # "R.E.M." and "Run-D.M.C." whole, "the record thriller" an album
        tagged = self._whole_credit(tagged, tokens)  # "by iron and wine": one artist, not "iron" and a title "wine"
        tagged = self._possessive_split(tagged, tokens)  # "queen's barcelona": the artist's title
        spans = [_Span(k, a, b, " ".join(tokens[a:b])) for k, a, b in tagged]
        if intent == "none":
            # "play rock show": "show" is not music, but the catalog has that title.
            named = self._names_whole_request(norm, tokens, spans, confidence)
            if named is None:
                named = self._near_miss(norm, tokens, spans, None)
            return named if named is not None else IntentResult("none", confidence=confidence, text=norm)
        if intent in ("pause", "resume", "stop", "previous", "volume_up", "volume_down"):
            return IntentResult(intent, confidence=confidence, text=norm)
        result = self._slots(intent, confidence, norm, tokens, spans)
        if intent in ("play", "similar"):
            result = self._whole_content(result, tokens, spans)
        if intent == "play" and not result.slots and not result.exclude:
            result = self._unknown_name(result)
        elif intent == "play" and not result.exclude:
            result = self._partial_name(result)
        if intent in ("play", "recommend") and not result.exclude:
            lenient = self._near_miss(norm, tokens, spans, result)
            if lenient is not None and (not result.entities or (len(lenient.entities) > len(result.entities)
                                                                and _agree(lenient.entities))):
                result = lenient  # "a hello by adele": the tagger missed a name the catalog has exactly
        if intent == "what_is_playing":
            result = replace(result, question=self._question(norm), query="")
        return result

    def _names_whole_request(self, norm: str, tokens: list[str], spans: list[_Span], none_confidence: float):
        """A play request ("play X" with a strong verb) whose X is exactly a catalog name, or None."""
        m = _PLAY_RE.match(RuleParser._strip(norm))
        if self.gazetteer is None or m is None or m.group("verb") not in STRONG_PLAY_VERBS \
                or _NON_MUSIC_ONLY_RE.match(m.group("rest").strip()):
            return None  # "play the radio" asks for the radio, even if a song is called "Radio"
        # The classifier said "none" and the catalog says a name: an even call.
        result = self._whole_content(IntentResult("play", confidence=RESCUED_CONFIDENCE, text=norm), tokens, spans)
        return self._partial_name(result) if result.entities else None

    def _whole_credit(self, tagged: list[tuple[str, int, int]], tokens: list[str]) -> list[tuple[str, int, int]]:
        """An artist after "by" that the tagger cut at "and"/"of"/"the" ("by iron | and wine", "by lamb | of
        god") runs to the end of the request (or to "on", "from", "please"...), unless the catalog knows the
        shorter name better than the longer."""
        out = list(tagged)
        for kind, a, b in tagged:
            if kind != "artist" or a == 0 or tokens[a - 1] != "by" or b >= len(tokens) or tokens[b] not in _CREDIT_JOINERS:
                continue
            end = b + 1
            while end < len(tokens) and tokens[end] not in _CREDIT_ENDS:
                end += 1
            if set(tokens[b + 1:end]) & CLAUSE_WORDS:
                continue  # "by cat stevens and i'll be happy": a clause follows, not more of the name
            if end - a > UNRESOLVED_MAX_WORDS or end == b + 1:
                continue
            if self.gazetteer is not None:
                alone = self.gazetteer.match(" ".join(tokens[a:b]), "artist", limit=1)
                whole = self.gazetteer.match(" ".join(tokens[a:end]), "artist", limit=1)
                if alone and alone[0].confident and (not whole or whole[0].score < alone[0].score):
                    continue  # "by adele and ...": the catalog's Adele
            out = [s for s in out if not (s[1] < end and s[2] > a)] + [("artist", a, end)]
        return self._unknown_credit_to_end(sorted(out, key=lambda s: s[1]), tokens)

    def _possessive_split(self, tagged: list[tuple[str, int, int]], tokens: list[str]) -> list[tuple[str, int, int]]:
        """An artist span with a possessive inside ("queen's barcelona") is the artist and one of its titles,
        when the owner is a catalog artist, the span does not follow "by", no other title is tagged and the words after it are a catalog title or not all everyday words
        ("adele's hello", but "afi's fourth album" is the artist alone)."""
        if any(k == "track" for k, _, _ in tagged):
            return tagged
        for kind, a, b in tagged:
            at = next((i for i in range(a, b - 1) if tokens[i].endswith("'s")), None)
            if kind != "artist" or at is None or (a > 0 and tokens[a - 1] == "by"):
                continue  # "songs by fat freddy's drop": the credit after "by" is one name
            owner = self.gazetteer.match(without_possessive(" ".join(tokens[a:at + 1])), "artist", limit=1) \
                if self.gazetteer is not None else []
            if not owner or not owner[0].confident:
                continue  # "play blackmore's night": a name the catalog lacks, kept whole
            rest = tokens[at + 1:b]
            split = [("artist", a, at + 1)]
            if not all(w in self._weak_words or w in _NAME_GLUE or w in _ORDINALS for w in rest) \
                    or self.gazetteer is not None and self.gazetteer.exact(" ".join(rest), "track") is not None:
                split.append(("track", at + 1, b))
            return sorted([s for s in tagged if s != (kind, a, b)] + split, key=lambda s: s[1])
        return tagged

    def _unknown_credit_to_end(self, tagged: list[tuple[str, int, int]], tokens: list[str]) -> list[tuple[str, int, int]]:
        """"play songs by codes in the clouds": an artist after "by" that the catalog does not know, cut
        short by the tagger, runs to the end of the request when the words after it are untagged, hold a
        word that is no everyday word and no clause ("by nora quill on repeat" stays "nora quill")."""
        if self.gazetteer is None:
            return tagged
        for kind, a, b in tagged:
            if kind != "artist" or a == 0 or tokens[a - 1] != "by" or b >= len(tokens):
                continue
            end = len(tokens)
            while end > b and tokens[end - 1] in _CONTENT_EDGE:
                end -= 1
            rest = tokens[b:end]
            if not rest or end - a > UNRESOLVED_MAX_WORDS or any(s[1] < end and s[2] > b for s in tagged) \
                    or set(rest) & (CLAUSE_WORDS | (_CREDIT_ENDS - {"in", "off"}) | {"by"}) \
                    or all(w in self._weak_words or w in _NAME_GLUE for w in rest):
                continue
            if any(h.confident for span in (tokens[a:b], tokens[a:end])
                   for h in self.gazetteer.match(" ".join(span), "artist", limit=1)):
                continue  # "by adele ...": the catalog's Adele
            return sorted([s for s in tagged if s != (kind, a, b)] + [("artist", a, end)], key=lambda s: s[1])
        return tagged

    def _unknown_name(self, result: IntentResult) -> IntentResult:
        """"play abhi the nomad": the tagger found nothing and the catalog knows no such name; the
        request's content is kept, as heard, as the name asked for (the rule grammar's unresolved
        kind, an artist), so that the answer can say it is not in the library instead of guessing."""
        content = result.content
        words = content.split()
        if not words or len(words) > UNRESOLVED_MAX_WORDS or self.rules._descriptive_only(content) \
                or set(words) <= _QUERY_STOP or not set(result.query.split()) <= set(words) \
                or _NOT_NAME_WORDS & set(words) or self._common.issuperset(set(words) - _NAME_GLUE):
            return result  # "shuffle entire library", "play my favorite music": everyday words, no name
        m = _PLAY_RE.match(RuleParser._strip(result.text))
        if m is None or m.group("verb") not in STRONG_PLAY_VERBS or _GAME_OPENER.match(result.text):
            return result  # "let's play battleship": a game; "i need ...": too weak a verb to make a name
        kind = self.options.unresolved_kind
        return replace(result, slots={kind: content}, heard={kind: content})  # the words still search by meaning

    def _partial_name(self, result: IntentResult) -> IntentResult:
        """"play the verve pipe", "play lost wings": one catalog name covers only part of a short request
        whose other words are no everyday, mood or genre words; the whole request is a name the catalog
        lacks, kept as heard, not the part the catalog has (no "by": "TITLE by ARTIST" keeps its parts)."""
        words = result.content.split()
        if len(result.entities) != 1 or len(words) < 2 or len(words) > UNRESOLVED_MAX_WORDS or "by" in words \
                or len(result.slots) != 1:
            return result
        entity = result.entities[0]
        kind = entity.kind
        part = result.heard.get(kind, "").split()
        if part[:1] == ["the"] and words[:1] != ["the"]:
            part = part[1:]  # "the verve" in "play the verve pipe", whose content is "verve pipe"
        at = next((i for i in range(len(words) - len(part) + 1) if words[i:i + len(part)] == part), None)
        if not part or at is None:
            return result
        rest = words[:at] + words[at + len(part):]
        if not rest or any(w in self._weak_words or w in _NAME_GLUE or w in _NOT_NAME_WORDS or find_years(w)
                           or self.gazetteer is not None and self.gazetteer.exact(w, "artist") is not None
                           for w in rest):
            return result
        return self._unknown_name(replace(result, slots={}, heard={}, entities=(), alternatives=()))

    def _near_miss(self, norm: str, tokens: list[str], spans: list[_Span],
                   result: IntentResult | None) -> IntentResult | None:
        """A request whose verb was misheard ("lay adele hello", "i wanted to listen to coldplay"):
        catalog names among fillers (`lenient.find_request`), read as "play NAMES"; None if it is not one."""
        names = find_request(tokens, self.gazetteer, self._weak_words)
        if not names:
            return None
        named = {i for n in names for i in range(n.start, n.end)}
        kept = [sp for sp in spans if sp.kind not in NAME_KINDS and not named & set(range(sp.start, sp.end))]
        found = [_Span(n.kind, n.start, n.end, " ".join(tokens[n.start:n.end])) for n in names]
        intent = result.intent if result is not None else "play"
        confidence = result.confidence if result is not None else LENIENT_CONFIDENCE
        redone = self._slots(intent, confidence, norm, tokens, sorted([*kept, *found], key=lambda sp: sp.start),
                             untagged=False)
        content = " ".join(tokens[names[0].start:names[-1].end])
        return replace(redone, content=content)

    def _whole_content(self, result: IntentResult, tokens: list[str], spans: list[_Span]) -> IntentResult:
        """A play request whose whole content is one catalog name ("play give me everything",
        "play rock show") is that name, whatever the tagger made of its words. The content is
        also kept for the ranker's lenient search of badly heard names."""
        a, b = _content_range(result.text, tokens)
        while a < b and tokens[a] in _CONTENT_EDGE:
            a += 1
        while b > a and tokens[b - 1] in _CONTENT_EDGE:
            b -= 1
        if b <= a or _topic_at(tokens, a + 1):
            return result  # "songs about rain": a topic for the semantic search, not a badly heard name
        content = " ".join(tokens[a:b])
        result = replace(result, content=content)
        if self.gazetteer is None or b - a > WHOLE_MAX_WORDS or result.exclude:
            return result
        best = max(result.entities, key=lambda e: e.score, default=None)
        if best is not None and (best.score >= WHOLE_MATCH_MIN or best.heard == content):
            return result
        hits = [h for kind in NAME_KINDS for h in self.gazetteer.match(content, kind, limit=1, min_score=WHOLE_MATCH_MIN)]
        if not hits:
            return result
        whole = max(hits, key=lambda h: h.score)
        if best is not None and whole.score <= best.score:
            return result
        kept = [sp for sp in spans if sp.end <= a or sp.start >= b]
        redone = self._slots(result.intent, result.confidence, result.text, tokens,
                             sorted([*kept, _Span(whole.kind, a, b, content)], key=lambda sp: sp.start))
        return replace(redone, content=content)

    def _slots(self, intent: str, confidence: float, norm: str, tokens: list[str], spans: list[_Span],
               untagged: bool = True) -> IntentResult:
        """Slots, exclusions, catalog matches and free text from tagged spans; with `untagged`, catalog
        names are also looked for among the words no span covers."""
        excluded = excluded_spans(tokens, [(s.kind, s.start, s.end) for s in spans])
        slots: dict[str, str] = {}
        heard: dict[str, str] = {}
        exclude: dict[str, str] = {}
        entities: list[EntityMatch] = []
        excluded_entities: list[EntityMatch] = []
        alternatives: list[EntityMatch] = []
        extra: list[str] = []  # positive spans beyond the first of their kind: free text for the ranker
        moods: list[str] = []
        heard_moods: list[str] = []
        covered: set[int] = set()
        # Artists first: a title is then checked against the artist named.
        order = sorted(range(len(spans)), key=lambda k: (spans[k].kind != "artist", k))
        artist_ids: set[str] | None = None
        for k in order:
            span = spans[k]
            covered.update(range(span.start, span.end))
            kind, value, entity, alts = span.kind, span.text, None, []
            if kind in NAME_KINDS and _topic_at(tokens, span.start):
                extra.append(span.text)  # "songs about summer love": a topic for the semantic search, not a title
                continue
            if kind in (*NAME_KINDS, "playlist") and "about" in tokens[span.start:span.end - 1]:
                at = tokens.index("about", span.start)  # a span "songs about rain" is a topic, not a playlist
                extra.append(" ".join(tokens[at + 1:span.end]))
                continue
            if kind == "playlist" and self.gazetteer is not None and not _PLAYLIST_WORDS & set(tokens):
                # "play escapada": a playlist to the tagger, but said without "playlist"; a catalog name wins
                named = [h for other in NAME_KINDS
                         for h in self.gazetteer.match(span.text, other, limit=1, min_score=OTHER_KIND_MIN_SCORE)]
                if named:
                    kind = max(named, key=lambda h: h.score).kind
            if kind in NAME_KINDS:
                # "adele's last album": the name without the possessive; what was heard stays whole
                entity, alts = self._resolve(without_possessive(span.text), kind,
                                             artist_ids if k not in excluded else None)
                if without_possessive(span.text) != span.text:
                    entity = replace(entity, heard=span.text) if entity is not None else None
                    alts = [replace(a, heard=span.text) for a in alts]
                if entity is not None:
                    kind, value = entity.kind, entity.name
            elif kind == "mood":
                canon = _canonical_moods(span.text)
                if not canon:
                    extra.append(span.text)  # "dreamy": not one of our moods; the embedder may know it
                    continue
                if k in excluded:
                    exclude.setdefault("mood", ", ".join(canon))
                else:
                    moods.extend(m for m in canon if m not in moods)
                continue
            if k in excluded:
                if kind not in exclude:
                    exclude[kind] = value
                if entity is not None:
                    excluded_entities.append(entity)
                continue
            if kind in slots:
                extra.append(span.text)
                continue
            slots[kind] = value
            heard[kind] = span.text
            if entity is not None:
                entities.append(entity)
                alternatives.extend(alts)
                if entity.kind == "artist":
                    artist_ids = set(entity.song_ids)
            elif alts:
                alternatives.extend(alts)
        if untagged and (intent in CONTENT_INTENTS or intent in ("like", "dislike", "next", "what_is_playing")):
            negated = negated_positions(tokens, frozenset(covered))
            stop = _QUERY_STOP | _QUESTION_STOP if intent == "what_is_playing" else _QUERY_STOP
            for a, b, entity, alts in self._untagged_names(tokens, covered, set(slots) | set(exclude), artist_ids,
                                                           negated, stop, single=intent in CONTENT_INTENTS):
                covered.update(range(a, b))
                if negated[a]:
                    exclude.setdefault(entity.kind, entity.name)
                    excluded_entities.append(entity)
                    continue
                slots[entity.kind] = entity.name
                heard[entity.kind] = " ".join(tokens[a:b])
                entities.append(entity)
                alternatives.extend(alts)
        if intent in CONTENT_INTENTS and not moods:  # "i'm feeling down": a mood word the tagger left alone
            negated = negated_positions(tokens, frozenset(covered))
            for i, w in enumerate(tokens):
                if i not in covered and w in L.MOOD_WORDS and not negated[i]:
                    moods.append(L.MOOD_WORDS[w])
                    covered.add(i)
                    heard_moods.append(w)
                    break
        if moods:
            slots["mood"] = ", ".join(moods)
            heard["mood"] = " ".join([s.text for s in spans if s.kind == "mood" and _canonical_moods(s.text)]
                                     + heard_moods)
        query = ""
        if intent in CONTENT_INTENTS:
            # "songs about summer love": every word of the topic counts ("love" is a filler elsewhere).
            about = tokens.index("about") if "about" in tokens else len(tokens)
            rest = [w for i, w in enumerate(tokens)
                    if i not in covered and ((i > about and w not in CUE_WORDS) or w not in _QUERY_STOP)]
            query = " ".join(dict.fromkeys([*extra, *rest])).strip()
        if intent == "next":  # "play the next song": what to skip may be named, nothing else
            slots, heard, entities, alternatives, query = {}, {}, [], [], ""
        ordered = {k: slots[k] for k in sorted(slots, key=_slot_order)}
        return IntentResult(intent, ordered, confidence, norm, {k: heard[k] for k in ordered if k in heard},
                            tuple(entities), query, tuple(alternatives), exclude, tuple(excluded_entities))

    def _resolve(self, span: str, kind: str, artist_ids: set[str] | None) -> tuple[EntityMatch | None, list[EntityMatch]]:
        """The catalog name a tagged span means (its tagged kind first), and runners-up."""
        if self.gazetteer is None:
            return None, []
        threshold = self.options.entity_min_score
        hits = self.gazetteer.match(span, kind, limit=ALTERNATIVES + 1, min_score=threshold - ALTERNATIVE_MARGIN)
        if kind == "track" and artist_ids:
            scored = sorted(((h.score + (ARTIST_AGREES_BONUS if artist_ids & set(h.song_ids) else
                                         -ARTIST_AGREES_BONUS / 2), h) for h in hits), key=lambda t: -t[0])
            hits = [h for _, h in scored]
            top = scored[0][0] if scored else 0.0
        else:
            top = hits[0].score if hits else 0.0
        if top >= threshold:
            return hits[0], hits[1: ALTERNATIVES + 1]
        others = [h for other in NAME_KINDS if other != kind
                  for h in self.gazetteer.match(span, other, limit=1, min_score=OTHER_KIND_MIN_SCORE)]
        if others:
            best = max(others, key=lambda h: h.score)
            return best, hits[:ALTERNATIVES]
        return None, hits[:ALTERNATIVES]

    def _untagged_names(self, tokens: list[str], covered: set[int], taken: set[str], artist_ids,
                        negated: list[bool], stop: frozenset[str], single: bool):
        """Catalog names among the words the tagger left untagged ("play someone like yu by adel":
        the tagger found the artist; the catalog knows the misheard title). One-word names only
        with `single` and never phonetic ("what's" is not "Wheatus"); after a negation an exact
        title may be a common word ("play adele but not hello")."""
        if self.gazetteer is None:
            return []
        found = []
        runs: list[tuple[int, int]] = []
        start = None
        for i in range(len(tokens) + 1):
            free = i < len(tokens) and i not in covered
            if start is not None and (not free or negated[i] != negated[start]):
                runs.append((start, i))
                start = None
            if free and start is None:
                start = i
        for a, b in runs:
            negative = negated[a]
            # After a negation a greeting word may be a title ("play adele but not hello").
            strip = stop - _GREETINGS if negative else stop
            run_start = a
            while a < b and tokens[a] in strip:
                a += 1
            after_by = "by" in tokens[run_start:a]  # "starboy by the weekend": a name's place
            if _topic_at(tokens, a):
                continue
            end = b  # names may end in a stop word ("someone like you"): try the span with and without them
            while b > a and tokens[b - 1] in strip:
                b -= 1
            best, alts, best_end = None, [], b
            for stop_at in dict.fromkeys((b, end)):
                if stop_at <= a or stop_at - a > UNTAGGED_MAX_WORDS:
                    continue
                span = " ".join(tokens[a:stop_at])
                if stop_at - a == 1 and not negative and (not single or span in L.MOOD_WORDS or span in stop
                                                         or len(span) < 4 or span in _NOT_A_NAME_ALONE):
                    continue  # "sad", "pop", "hey": words, not names
                need = self.options.content_entity_min_score if stop_at - a > 1 else SINGLE_WORD_NAME_MIN
                if negative and stop_at - a == 1:
                    need = EXACT_NAME_MIN
                elif not negative and not after_by and self._common.issuperset(tokens[a:stop_at]):
                    # "play thinking out loud next", "save that song": words the training data almost never
                    # puts in a name, left alone by the tagger and not after "by", are a name only when
                    # they are that close to one; a single one never.
                    if stop_at - a == 1:
                        continue
                    need = COMMON_RUN_MIN
                for kind in NAME_KINDS:
                    if kind in taken:
                        continue
                    entity, others = self._resolve(span, kind, artist_ids)
                    if entity is not None and entity.kind == kind and entity.score >= need \
                            and (stop_at - a > 1 or entity.how != "phonetic" or entity.score >= PHONETIC_WORD_MIN) \
                            and (best is None or entity.score > best.score):
                        best, alts, best_end = entity, others, stop_at
            if best is not None and best.kind not in taken:
                taken.add(best.kind)
                found.append((a, best_end, best, alts))
        return found

    @staticmethod
    def _question(norm: str) -> str:
        for name, pattern in _QUESTIONS:
            if pattern.search(norm):
                return name
        return "song"


def make_parser(config, gazetteer: Gazetteer | None) -> IntentParser:
    """The parser a `Config` asks for ([nlu] learned, model)."""
    from assistant.config import resolve_path

    nlu = config.nlu
    return IntentParser(gazetteer, learned=nlu.learned, model=resolve_path(nlu.model) if nlu.model else None)


def _agree(entities) -> bool:
    """A title and an artist that name the same song ("a hello by adele")."""
    artists = {s for e in entities if e.kind == "artist" for s in e.song_ids}
    return any(artists & set(e.song_ids) for e in entities if e.kind != "artist")


def _as_heard(result: IntentResult) -> IntentResult:
    """Name slots hold what was heard; the catalog spelling stays in `entities` (JSON `matches`)."""
    if not any(k in result.heard for k in NAME_SLOTS if k in result.slots):
        return result
    slots = {k: result.heard[k] if k in NAME_SLOTS and k in result.heard else v for k, v in result.slots.items()}
    return replace(result, slots=slots)


def _with_article(result: IntentResult) -> IntentResult:
    """"play a great big world": a name the catalog lacks that ends the request keeps the "a" it was heard
    with, after a verb, "some" or "by" ("play a paolo gregoletto song": the "a" goes with "song"); the
    catalog's names are matched without it, and a name it has is left as it is."""
    unknown = result.unknown_names()
    if not unknown:
        return result
    slots, heard = dict(result.slots), dict(result.heard)
    renamed: dict[tuple[str, str], str] = {}
    for kind, value in unknown.items():
        if heard.get(kind, value) == value and re.search(rf"(?:^|\b(?:{_ARTICLE_LEADS})) a {re.escape(value)}(?: please| now)?$",
                                                         result.text):
            slots[kind] = heard[kind] = renamed[(kind, value)] = f"a {value}"
    if not renamed:
        return result

    def moved(entities):
        return tuple(replace(e, heard=renamed[(e.kind, e.heard)]) if (e.kind, e.heard) in renamed else e
                     for e in entities)

    return replace(result, slots=slots, heard=heard, entities=moved(result.entities),
                   alternatives=moved(result.alternatives))


def _with_years(result: IntentResult, catalog_years: tuple[int, int] | None) -> IntentResult:
    """The `year` slot as a number or {"from", "to"} (the words stay in `heard`); a year that is no year
    ("eighteen hundred", "year zero") is no slot, and never a name."""
    if not result.wants_songs:
        return result
    slots, heard = dict(result.slots), dict(result.heard)
    entities = result.entities
    playlist = () if _PLAYLIST_WORDS & set(result.text.split()) else ("playlist",)  # "my 2000 playlist" is one
    for kind in (*NAME_SLOTS, *playlist):  # "play music from eighteen hundred": a year out of range, not a name
        if isinstance(slots.get(kind), str) and is_number_phrase(slots[kind]):
            heard.pop(kind, None)
            heard.setdefault("year", slots.pop(kind))
            entities = tuple(e for e in entities if e.kind != kind)
    spoken = heard.get("year") if isinstance(heard.get("year"), str) else slots.get("year")
    if not isinstance(spoken, str) and not find_years(result.text):
        return result if entities == result.entities else replace(result, slots=slots, heard=heard, entities=entities)
    ranged = _year_range_span(result.text)
    if ranged and (not spoken or spoken in ranged):
        spoken = ranged  # "from two thousand and four to two thousand and eight": one range
    value = year_slot(spoken, catalog_years) if spoken else None
    slots.pop("year", None)
    if value is not None:
        slots["year"] = value
        heard["year"] = spoken
    ordered = {k: slots[k] for k in sorted(slots, key=_slot_order)}
    return replace(result, slots=ordered, heard={k: v for k, v in heard.items()}, entities=entities)


def _year_range_span(text: str) -> str:
    """The words of a range of years in the text ("two thousand and four to two thousand and eight"), or ""."""
    found = find_years(text)
    for a, b in zip(found, found[1:]):
        between = text[a.end():b.start()].split()
        if between and all(w in ("to", "and", "through", "thru", "till", "until", "til") for w in between):
            return text[a.start():b.end()]
    return ""


def _topic_at(tokens: list[str], start: int) -> bool:
    """Whether a span starting here follows "about" ("songs about summer love")."""
    return start > 0 and tokens[start - 1] == "about"


def _content_range(norm: str, tokens: list[str]) -> tuple[int, int]:
    """Token range of what a request asks for: after the play verb ("can you play X please" -> X)."""
    stripped = RuleParser._strip(norm)
    m = _PLAY_RE.match(stripped)
    rest = _AFTER_VERB.sub("", m.group("rest").strip()).strip() if m else stripped
    words = rest.split()
    n = len(words)
    for start in range(len(tokens) - n, -1, -1):
        if tokens[start:start + n] == words:
            return start, start + n
    return 0, 0


_SLOT_ORDER = ("track", "artist", "album", "playlist", "genre", "mood", "year", "sort", "service", "music_item")


def _slot_order(kind: str) -> int:
    return _SLOT_ORDER.index(kind) if kind in _SLOT_ORDER else len(_SLOT_ORDER)


def _canonical_moods(span: str) -> list[str]:
    """Canonical moods a mood span names: the whole phrase, else each word ("slow sad" -> calm, sad)."""
    whole = L.MOOD_WORDS.get(span)
    if whole:
        return [whole]
    out: list[str] = []
    for w in span.split():
        m = L.MOOD_WORDS.get(w)
        if m and m not in out:
            out.append(m)
    return out
