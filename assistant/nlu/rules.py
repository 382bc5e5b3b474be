"""Rule grammar + catalog intent parser (`RuleParser`): command text -> `IntentResult`.

The text is normalized (`assistant.asr.text.normalize_text`), greetings and
request openers are stripped ("hello", "can you please"), then:

1. player controls and feedback are matched by phrase patterns
   (what_is_playing, volume_up/down, similar, dislike, like, next, previous,
   pause, resume, stop), the whole-utterance ones anchored so that
   "play don't stop me now" stays a play request;
2. a play verb ("play", "put on", "i want to hear") or a recommend trigger
   ("suggest", "recommend", "i'm in the mood for") takes the rest as content;
3. content is cut into Snips slots by cue words: service ("on spotify"),
   playlist ("my chill playlist"), album ("the album X"), artist ("by X",
   "X's songs"), year ("from the eighties"), sort ("latest"), mood ("sad"),
   genre, music_item; the rest is resolved against the catalog gazetteer
   (artists, titles, albums) with fuzzy + phonetic matching, so "someone like
   yu by adel" becomes track "Someone Like You", artist "Adele";
4. with no verb, an utterance that is only a mood/genre is a recommendation
   and one that closely names a catalog entity is a play request; anything
   else is "none".

Confidence is the rule's prior (how often that cue means that intent) scaled
by the catalog match score when an entity carries the decision.
Parsing takes well under a millisecond plus the gazetteer look-ups (~1 ms).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.asr.text import normalize_text
from assistant.nlu import lexicon as L
from assistant.nlu.gazetteer import Gazetteer
from assistant.nlu.intent import EntityMatch, IntentResult
from assistant.nlu.years import YEAR_PATTERN, find_years

BARRIER = " | "  # replaces a consumed span so later patterns cannot join across it


def _alt(words) -> str:
    """Regex alternation of phrases, longest first."""
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


@dataclass(frozen=True)
class ParserOptions:
    """Thresholds of the parser."""

    max_text_chars: int = 500  # longer input is cut here (a command is a sentence, not a page)
    entity_min_score: float = 0.72  # a cued span ("by X") resolves to a catalog name at this similarity
    content_entity_min_score: float = 0.75  # an uncued span of a request ("play X") resolves at this similarity
    bare_entity_min_score: float = 0.85  # with no verb at all, a span must be this close to count as a request
    unresolved_kind: str = "artist"  # slot for a leftover span the catalog does not know (Snips' commonest)


# Objects that may follow a control verb ("stop the music").
_OBJ = r"(?: (?:it|this|that|the music|music|the song|this song|that song|the track|this track|playback|the playback|playing|everything|this one|that one|the current song))?"
_WHILE = r"(?: for (?:a|one) (?:second|sec|minute|moment|bit|while))?"
# Whole-utterance control phrases (matched against the stripped utterance).
CONTROL_RULES: tuple[tuple[str, str, float], ...] = (
    ("pause", rf"(?:pause{_OBJ}|hold on|hold it|hold the music|wait|wait a (?:second|minute|moment)|one (?:second|moment)|mute{_OBJ}|take a break){_WHILE}", 0.95),
    ("resume", rf"(?:resume{_OBJ}|resume playing|continue{_OBJ}|continue playing|unpause{_OBJ}|un pause{_OBJ}|unmute{_OBJ}|keep (?:playing|going)|carry on|go on|play|play it|play again|play it again|start again|restart{_OBJ}|start (?:the music|playing) again|turn (?:it|the music) back on|back on)", 0.9),
    ("stop", rf"(?:(?:(?:that's|that is|that will be|that would be|that'll be|it's|it is) (?:all|enough)|enough|okay|ok|please|just)? ?(?:just )?(?:stop|cancel|quit|shut (?:down|off|up))(?: it| that| this| now| please| everything)*|(?:that's|that is|that will be|that would be|that'll be) (?:all|enough)|(?:i'll |i will |i would )?talk to you later(?: on)?|goodbye|bye|stop{_OBJ}|stop (?:talking|now|please|it now)|(?:please )?stop|shut up|shut it off|shut (?:it|that) up|be quiet|quiet|silence|enough|that's enough|thats enough|cancel|cancel (?:that|it|this)|end{_OBJ}|turn{_OBJ} off|turn off{_OBJ}|switch{_OBJ} off|switch off{_OBJ}|kill the music|no more music|hold on stop|never ?mind|quit|exit|halt)", 0.95),
    ("next", r"(?:next|skip|skip (?:it|this|that|this song|this track|this one|the song|the track|ahead|forward|to the next(?: one| song| track)?)|(?:the )?next (?:song|track|one|tune|please)|(?:play|go to|give me|jump to|move to|move on to|on to|skip to|go on to|go) (?:the )?next(?: (?:song|track|one|tune))?|another (?:song|one|track|tune)|something else|play something else|change (?:the |this )?(?:song|track|music|tune)|(?:a )?different (?:song|track|one)|move on|forward|fast forward)", 0.95),
    ("previous", r"(?:previous|back|go back|previous (?:song|track|one)|(?:the )?previous (?:song|track|one)|(?:play|go to|go back to|back to|jump to|return to) (?:the )?(?:previous|last|prior) (?:song|track|one)|(?:play )?(?:the )?last (?:song|track|one) again|the one before|(?:play )?the song before|rewind|replay the (?:last|previous) (?:song|track|one)|go back (?:a|one) (?:song|track)|back (?:a|one) (?:song|track))", 0.9),
)

_SIMILAR_REF = r"(?:songs?|music|tracks?|something|anything|stuff|more|artists?|bands?)"
SIMILAR_PATTERNS: tuple[tuple[str, float], ...] = (
    (r"\bmore like (?:this|that|it|these|those|the last one|the current song)\b", 0.95),
    (r"\b(?:more|some|something|songs?|music|tracks?|anything|stuff) (?:similar|like (?:this|that|it))\b", 0.9),
    (r"\bsimilar (?:songs?|music|tracks?|stuff|ones?|artists?|to (?:this|that|it|the current one))\b", 0.9),
    (r"\bsame (?:kind|type|style|vibe|genre|sort|feel|mood) of\b|\bin the same (?:vibe|style|genre|mood)\b|\balong the same lines\b", 0.85),
    (r"\b(?:more|some) of (?:this|that|the same)\b|\blike this one\b|\bkeep (?:this|these|it) coming\b", 0.8),
    (rf"\b{_SIMILAR_REF} (?:similar to|like|that sounds? like|sounding like|in the style of|in the vein of) (?P<ref>.+)", 0.85),
)

_FEEDBACK_OBJ = r"(?: (?:this|that|it|the song|this song|that song|the track|this track|this one|that one|this tune|the music|this music|this artist|this band|him|her|them))?"
_BAD = r"(?:bad|terrible|awful|horrible|boring|annoying|lame|crap|crappy|rubbish|stupid|garbage|trash|the worst|not good|not great)"
_GOOD = r"(?:great|good|nice|awesome|amazing|cool|excellent|beautiful|lovely|fantastic|brilliant|perfect|wonderful|fire|dope|the best|my jam|a banger|a bop|a masterpiece)"
DISLIKE_PATTERNS: tuple[tuple[str, float], ...] = (
    (rf"\bi (?:really |just )?(?:don't|dont|do not|didn't|didnt|did not) (?:like|love|want|enjoy|care for|dig){_FEEDBACK_OBJ}\b", 0.9),
    (rf"\bi (?:really |just )?(?:hate|dislike|can't stand|cant stand|cannot stand|detest|loathe){_FEEDBACK_OBJ}\b", 0.92),
    (rf"\bdislike\b|\bthumbs down\b|\bnot (?:this|that) (?:one|song|again)\b|\bnever play (?:this|that|it)\b|\b(?:don't|dont|do not) play (?:this|that|it) (?:again|anymore|ever)\b", 0.92),
    (rf"\b{_BAD} (?:song|track|music|tune|choice|pick)\b|\b(?:this|that|it|the song|this song)(?: song| track)? (?:is|s|was) {_BAD}\b|\b(?:this|that|it)(?: song| track)? (?:sucks|stinks)\b", 0.88),
    (r"\bnot for me\b|\bnot my (?:taste|style|thing|cup of tea|kind of music)\b|\bi'm not a fan\b|\bnot a fan\b|\bban (?:this|that|it)\b", 0.85),
)
LIKE_PATTERNS: tuple[tuple[str, float], ...] = (
    (rf"\bi (?:really |just |so |do |absolutely |totally )?(?:like|love|enjoy|dig|adore){_FEEDBACK_OBJ}(?P<rest>(?: .*)?)$", 0.85),
    (rf"^(?:i )?(?:like|love) (?:this|it|that)(?: song| track| one| tune)?$|\bthumbs up\b|^(?:i )?(?:love|loving) (?:it|this)$|\bi'm loving (?:this|it)\b", 0.9),
    (rf"\b{_GOOD} (?:song|track|tune|music|choice|pick)\b|\b(?:this|that|the|current) (?:song|track|tune|music)(?: is| s| was)(?: (?:so|very|too|really|just))? (?:{_GOOD[3:-1]}|my favou?rite|(?:very )?(?:melodious|relaxing|beautiful)|(?:one of )?(?:the best|my favou?rites?))\b", 0.88),
    (r"\b(?:this|that) is my favou?rite(?: song| track| tune)?\b|\bmy favou?rite (?:song|singer|band|artist|music band|group) is\b|\bsuper song\b|\bremember this (?:song|music|track)\b", 0.85),
    (r"\b(?:rate|give)\b.*\b(?:four|five) stars?\b|\b(?:love|loving) me some\b", 0.8),
    (r"\b(?:save|add|put|keep) (?:this|it|that|the song|this song|that song|this track|the track|the current song|the current track|this music)(?: song| track)? (?:to|in|into|on|for) (?:my |the )?(?:[a-z]+ )*(?:favorites|favourites|liked(?: songs)?|likes|library|loved(?: songs)?|collection|favorite songs|favourite songs|saved songs|playlist|music|list|catalogue|catalog)\b", 0.92),
    (r"\bmake (?:this|that|it)(?: song)? (?:my|a) favou?rite\b", 0.9),
    (r"\b(?:favorite|favourite|heart|star|save) (?:this|it|that)(?: song| track| one)?\b|\badd (?:this|it) to my (?:favorites|favourites)\b|\bgive (?:it|this) a like\b", 0.9),
)

WHAT_IS_PLAYING = (
    r"\b(?:what(?:'s| is|s)? (?:this|that|the current|the) (?:song|track|tune|music|artist|band|album|singer)(?: called)?"
    r"|what (?:song|track|music|tune|album) (?:is|s) (?:this|that|playing|on)"
    r"|what(?:'s| is|s)? (?:currently |now )?playing"
    r"|what (?:am i|are we|are you) (?:listening to|playing)"
    r"|who (?:sings|sang|is singing|performs|is performing|wrote|made|is the (?:artist|singer|band))(?: (?:this|that|it|the song|this song|that song|the current song))?"
    r"|who is (?:this|that|singing)|who's (?:this|that|singing)"
    r"|(?:the )?name (?:of )?(?:this|that|the|the current) (?:song|track|artist|singer|band|tune)"
    r"|name (?:the|this) (?:song|singer|artist|band|tune)"
    r"|title of (?:this |that |the )?(?:song|track|tune)"
    r"|(?:tell|show) me (?:the )?(?:name|title|artist|singer) of (?:this|that|the)"
    r"|which (?:song|track) is (?:this|that|playing)"
    r"|identify (?:this|the) (?:song|track|tune)"
    r"|(?:currently|now) playing"
    r"|who sung (?:this|that|it)|who's playing (?:this|that)|identify (?:the |this )?(?:song|music|track)"
    r"|what (?:music|song|track) is (?:it|this|that|being played|on|playing)"
    r"|name of the (?:music|song|track|tune)(?: playing| that is playing| on)?"
    r"|(?:who|what|which|when|where)\b[a-z' ]*\b(?:this|that|the current|current|currently) (?:song|music|track|tune|album|artist|singer|band)"
    r"|(?:who|what|which)\b[a-z' ]*\b(?:song|music|track) (?:is )?(?:playing|on)(?: now| right now)?"
    r"|whose (?:song|music|track|voice) is (?:this|that|it|playing)|(?:this|that|the) (?:song|track)\b[a-z' ]*\b(?:whom|which artist|which singer|which band)"
    r"|what (?:song|track) (?:is )?this is)\b"
)

_VOLUME_NOUN = r"(?:volume|sound|audio|speakers?|music player|media volume|the music|your voice|voice)"
VOLUME_UP = (
    r"\b(?:louder|volume up|audio up|sound up|turn (?:it|this|that|the volume|volume|the music|music|the sound|the audio) up|turn up(?: the)? (?:volume|music|sound|audio)|turn it up"
    r"|(?:increase|raise|boost|pump up|crank up|up|higher|bump up|amp up) (?:the )?(?:volume|sound|music|audio)"
    r"|(?:increase|raise|boost|bump|crank) (?:it|this)(?: up)?|crank it|more volume|max volume|full volume"
    r"|(?:can't|cant|cannot|can not|couldn't|barely|hardly) hear|too (?:quiet|soft|low)|not loud enough|make it loud|speak (?:up|loud|louder)"
    rf"|{_VOLUME_NOUN}\b.*\b(?:higher|high|louder|up|increase|increased|raised?|max(?:imum)?|loudest|boost(?:ed)?)"
    rf"|(?:raise|increase|boost|maximize|max|pump|higher|turn up)\b.*\b{_VOLUME_NOUN})\b"
)
VOLUME_DOWN = (
    r"\b(?:quieter|softer|less loud|volume down|lower (?:the )?(?:volume|music|sound|audio|it)|turn (?:it|this|that|the volume|volume|the music|music|the sound|the audio) down"
    r"|turn down(?: the)? (?:volume|music|sound|audio|speakers?)|turn it down|(?:decrease|reduce|drop|lessen|down) (?:the )?(?:volume|sound|music|audio)"
    r"|(?:decrease|reduce) it|too loud|not so loud|less volume|make it quiet(?:er)?|keep it down"
    rf"|{_VOLUME_NOUN}\b.*\b(?:lower|low|down|decrease|decreased|reduced?|quieter|softer|less|minimum|too high)"
    rf"|(?:lower|decrease|reduce|lessen|low|slow down|soften|minimize|turn down)\b.*\b{_VOLUME_NOUN})\b"
)

RECOMMEND_TRIGGERS = (
    r"\b(?:recommend(?:ation|ations)?|suggest(?:ion|ions)?|surprise me"
    r"|what (?:should|shall|could|can) (?:i|we) (?:listen to|play|hear|put on)"
    r"|(?:anything|something) (?:good|new|nice|fresh|interesting) to (?:listen to|hear|play)"
    r"|(?:i'm|im|i am|we're|we are) in (?:the|a) mood for|in the mood for"
    r"|(?:find|pick|choose|get|show) (?:me|us) (?:some |a |an |something )?(?=(?:[a-z' ]* )?(?:music|songs?|tracks?|tunes?|albums?|artists?|bands?|playlists?)\b)"
    r"|(?:got|have|know) any (?:good )?(?:songs?|music|tunes)|any (?:good )?(?:songs?|music|tunes) (?:for|to)"
    r"|something (?:to|for) (?:listen|dance|relax|study|sleep|work|run|the|my|a|me|us)"
    r"|i need (?:some |a |an |something )(?=(?:[a-z' ]* )?(?:music|songs?|tracks?|tunes?|to listen)\b)"
    r"|(?:give|play) me (?:some )?(?:ideas|options)"
    r"|what do you (?:recommend|suggest|think i'd like|think i would like))"
)
FEELING = r"^(?:i(?:'m| am|m)|i feel|i'm feeling|im feeling|i am feeling|feeling|i feel like|it's|its|it is) (?:so |really |very |a bit |a little |kind of |kinda |quite |pretty |super |too )?(?P<rest>.+)$"

PLAY_VERBS = (
    "play", "put on", "queue", "queue up", "listen to", "listen", "hear", "start", "start playing",
    "spin", "blast", "crank", "throw on", "bring on", "turn on", "switch on", "give me", "give us",
    "let's hear", "lets hear", "let me hear", "i want", "i need", "i'd love", "how about", "what about",
    "play me", "play us", "turn up", "i wanna hear", "want to hear", "wanna hear", "would like to hear",
    "need to hear", "put some", "shuffle", "run", "initiate", "pull up", "launch", "select", "time to hear",
    "time for", "i'm in the mood to hear", "hear me some", "let me listen to", "let's listen to",
)
# "open spotify and play ...", "google find and play ...": a play verb after a short lead-in.
_PLAY_RE = re.compile(rf"^(?:use (?:the service )?(?P<svc>{_alt(L.SERVICES)}) (?:to|and|for) |(?:[a-z']+ ){{1,4}}(?:and|to|then) (?=play\b))?(?P<verb>{_alt(PLAY_VERBS)})\b ?(?P<rest>.*)$")

_SERVICE_RE = re.compile(rf"(?:\b(?:on|using|with|via|from|in|off of|off|through|over|at) (?:the )?(?:service |app )?|\b)(?P<v>{_alt(L.SERVICES)})\b(?: (?:service|app|music))?")
_PLAYLIST_RES = (
    re.compile(r"\b(?:the )?playlist (?:called |named |titled )?(?!by |from |on |of )(?P<v>[a-z'][a-z' ]*?)(?= \||$| by | on | from )"),
    re.compile(r"\b(?:my|the|a|our|this) (?P<v>[a-z'][a-z' ]*?) playlist\b"),
)
_ALBUM_RES = (
    re.compile(r"\b(?:the )?(?P<item>album) (?:called |named |titled )?(?!by |from |on |of )(?P<v>[a-z'][a-z' ]*?)(?= \||$| by | on | from )"),
    re.compile(r"\b(?:the|my) (?P<v>[a-z'][a-z' ]*?) album\b"),
)
_TRACK_RES = (
    re.compile(r"\b(?:the )?(?P<item>song|track|tune|single) (?:called |named |titled )(?P<v>[a-z'][a-z' ]*?)(?= \||$| by | on | from )"),
    re.compile(r"\b(?:the )?(?P<item>song|track|tune|single) (?P<v>[a-z'][a-z' ]*?)(?= by | from )"),
)
_ARTIST_RES = (
    re.compile(r"\b(?:by|from|of) (?:the )?(?:artist|band|singer|group|rapper|composer|dj) (?P<v>[a-z'][a-z' ]*?)(?= \||$| on | in | off | from )"),
    re.compile(r"\b(?:the )?(?:artist|band|singer|group|rapper|composer) (?:called |named )?(?P<v>[a-z'][a-z' ]*?)(?= \||$| on | in | off | from )"),
    re.compile(r"\bby (?P<v>[a-z'][a-z' ]*?)(?= \||$| on | in | off | from )"),
    re.compile(r"\b(?:from|off) (?P<v>[a-z'][a-z' ]*?)(?= \||$| on | in | off | by )"),
    re.compile(r"\b(?:songs?|music|tracks?|hits?|albums?|stuff|some|any|anything|something|records?|tunes?) of (?P<v>[a-z'][a-z' ]*?)(?= \||$| on | in | off )"),
    re.compile(r"(?:^ ?|\| )(?P<v>[a-z][a-z ]*?)'s (?=(?:[a-z]+ )*(?:songs?|music|album|albums|tracks?|hits?|records?|latest|newest|new|best|greatest|top|stuff|tunes?|single|ep)\b)"),
)
_ABOUT_RE = re.compile(r"\b(?:about|with lyrics about|that talks? about|on the (?:theme|topic) of) (?P<v>[a-z'][a-z' ]*?)(?= \||$)")
_YEAR_CUE_RE = re.compile(rf"\b(?:from |of |in )?(?:the )?(?:year )?(?P<v>{YEAR_PATTERN})\b(?: (?:music|songs?|hits?))?")
_SORT_RE = re.compile(rf"\b(?P<v>{_alt(L.SORTS_POPULAR + L.SORTS_RECENT + L.SORTS_OLD)})\b")
_YEAR_RE = re.compile(rf"\b(?:{YEAR_PATTERN})\b")
_MUSIC_WORD_RE = re.compile(r"\b(?:music|songs?|tracks?|tunes?|albums?|playlists?|artists?|bands?|singers?)\b")
_MOOD_RE = re.compile(rf"\b(?P<v>{_alt(L.MOOD_WORDS)})\b")
_ITEM_RE = re.compile(rf"\b(?P<v>{_alt(L.MUSIC_ITEMS)})\b")
_NON_MUSIC_RE = re.compile(rf"\b(?:{_alt(L.NON_MUSIC_OBJECTS)})\b")
# Objects of "hear"/"play" that are the conversation or a game, not music.
_NOT_A_REQUEST_RE = re.compile(
    r"\b(?:what (?:you|i|we|he|she) (?:have |had |just |'ve )*(?:said|say|told|spoke)|(?:you|i|we) (?:have |just |'ve )*(?:said|spoke)"
    r"|(?:that|the|last) (?:sentence|utterance|instruction)|said again|spoke(?:n)? again|with me|with us|against me)\b"
    r"|^(?:it |that )?again$")
_NON_MUSIC_ONLY_RE = re.compile(rf"^(?:(?:the|my|a|some) )?(?:{_alt(L.NON_MUSIC_OBJECTS)})$")
# "i'd like you (to) stop": a request addressed to the assistant.
YOU_OPENERS = ("i'd like you to", "i would like you to", "i want you to", "i'd like you", "i would like you",
               "i want you", "i like you to", "i like you", "i need you to", "will you", "would you", "could you",
               "can you", "please will you", "please could you", "please can you", "please would you")
_LEADING = re.compile(rf"^(?:(?:{_alt(L.LEADING_FILLERS + L.REQUEST_OPENERS + YOU_OPENERS)})\b ?)+")
_AFTER_VERB = re.compile(r"^(?:(?:please|for me|for us|now|then|again) )+")
_TRAILING = re.compile(rf"(?: (?:{_alt(L.TRAILING_FILLERS)}))+$")
_CONTENT_FILLERS = frozenset(L.CONTENT_FILLERS)
RESOLVED_KINDS = ("artist", "album", "track")  # cued spans of these kinds are looked up in the catalog
_CLAUSE_BREAKS = frozenset({"can", "could", "would", "will", "please", "because", "so", "which", "when", "if",
                            "should", "he's", "she's", "it's", "i'm"})
_CLAUSE_STARTS = frozenset({"that", "which", "who", "is", "are", "was", "were", "be", "when", "where", "what",
                            "how", "why", "it", "this", "these", "those", "your", "our", "his", "her", "their",
                            "you", "i", "we", "they", "he", "she", "do", "does", "did", "information", "detail",
                            "details", "name", "based"})
_CUE_WORDS = frozenset({"by", "from", "of", "on", "off", "in", "about", "called", "named", "titled", "to", "and", "with"})


WHOLE_MATCH_MIN = 0.92
WEAK_VERB_ENTITY_MIN = 0.9  # "i want X" is a play request when X is this close to a catalog name
ALTERNATIVES = 4  # runner-up catalog names kept per span for the recommender
ALTERNATIVE_MARGIN = 0.1  # runners-up may score this much below the acceptance threshold
ARTIST_AGREES_BONUS = 0.08  # a title by the artist already named gains this much
BARE_NAME_MIN = 0.95  # a verbless utterance is a play request only if it names this closely
BARE_MAX_WORDS = 8  # a verbless utterance longer than this is not a bare name or mood
UNRESOLVED_MAX_WORDS = 6  # a longer unknown span is not taken as a name  # the whole content is taken as one catalog name at this similarity
_ARTICLES = frozenset({"a", "an", "the", "some", "by", "from", "of", "on", "to", "and"})

_EDGE_FILLERS = _ARTICLES | {"something", "anything", "music", "songs", "song", "please", "stuff", "any", "for"}


def _trim(text: str, drop: frozenset) -> str:
    """Text without the words in `drop` at either end."""
    words = text.split()
    while words and words[0] in drop:
        words.pop(0)
    while words and words[-1] in drop:
        words.pop()
    return " ".join(words)


STRONG_PLAY_VERBS = frozenset({
    "play", "put on", "queue", "queue up", "listen to", "hear", "play me", "play us", "start playing", "spin",
    "blast", "throw on", "wanna hear", "want to hear", "i wanna hear", "let me hear", "would like to hear",
    "need to hear", "let's hear", "lets hear", "shuffle"})


def _compile_controls():
    return tuple((intent, re.compile(rf"^(?:{pattern})$"), conf) for intent, pattern, conf in CONTROL_RULES)


class RuleParser:
    """Text -> IntentResult. Build once (compiles the genre pattern from the
    gazetteer); `parse` is then pure and thread-safe."""

    def __init__(self, gazetteer: Gazetteer | None = None, options: ParserOptions = ParserOptions()):
        self.gazetteer = gazetteer
        self.options = options
        self._controls = _compile_controls()
        self._similar = tuple((re.compile(p), c) for p, c in SIMILAR_PATTERNS)
        self._dislike = tuple((re.compile(p), c) for p, c in DISLIKE_PATTERNS)
        self._like = tuple((re.compile(p), c) for p, c in LIKE_PATTERNS)
        self._what = re.compile(WHAT_IS_PLAYING)
        self._vol_up = re.compile(VOLUME_UP)
        self._vol_down = re.compile(VOLUME_DOWN)
        self._recommend = re.compile(RECOMMEND_TRIGGERS)
        self._feeling = re.compile(FEELING)
        genres = set(L.GENRES)
        if gazetteer is not None:
            genres.update(normalize_text(g) for g in gazetteer.names("genre"))
        genres.discard("")
        self._genre_re = re.compile(rf"\b(?P<v>{_alt(genres)})\b")
        self._genre_words = frozenset(genres)

    # ------------------------------------------------------------------ public
    def parse(self, text: str) -> IntentResult:
        """Parse one command; never raises on odd input (empty, emoji, long, non-English)."""
        raw = str(text or "")[: self.options.max_text_chars * 2]
        norm = normalize_text(raw)[: self.options.max_text_chars].strip()
        s = self._strip(norm)
        if not s:
            return IntentResult("none", confidence=1.0 if not norm else 0.9, text=norm)
        for finder in (self._controls_intent, self._feedback_intent, self._play_intent,
                       self._recommend_intent, self._bare_intent):
            result = finder(s, norm)
            if result is not None:
                return result
        return IntentResult("none", confidence=0.8, text=norm)

    # --------------------------------------------------------------- intents
    @staticmethod
    def _strip(s: str) -> str:
        s = _LEADING.sub("", s).strip()
        s = _TRAILING.sub("", s).strip()
        return s

    def _controls_intent(self, s: str, norm: str) -> IntentResult | None:
        if self._what.search(s):
            return IntentResult("what_is_playing", confidence=0.92, text=norm)
        up, down = self._vol_up.search(s), self._vol_down.search(s)
        if up or down:
            intent = "volume_up" if up and (not down or up.start() < down.start()) else "volume_down"
            return IntentResult(intent, confidence=0.93, text=norm)
        for intent, pattern, conf in self._controls:
            if pattern.match(s):
                return IntentResult(intent, confidence=conf, text=norm)
        return None

    def _feedback_intent(self, s: str, norm: str) -> IntentResult | None:
        # "i don't like this one" is a complaint, not "more like this one".
        negative = not _PLAY_RE.match(s) and any(pattern.search(s) for pattern, _ in self._dislike)
        for pattern, conf in () if negative else self._similar:
            m = pattern.search(s)
            if m:
                ref = m.groupdict().get("ref")
                return self._content(ref or "").result("similar", conf, norm)
        if _PLAY_RE.match(s) and not s.startswith(("play it", "play this", "play that")):
            return None  # "play i don't like mondays": a title, not feedback
        for intent, rules in (("dislike", self._dislike), ("like", self._like)):
            for pattern, conf in rules:
                m = pattern.search(s)
                if m:
                    rest = (m.groupdict().get("rest") or "").strip()
                    if intent == "like" and rest and re.match(r"^(?:to|listening|hearing|you|it if|red|blue|green)\b", rest):
                        return None  # "i like to listen to jazz", "i like you to ...": not feedback
                    if intent == "like" and rest and not (self._has_music_word(rest) or self._names_entity(rest)):
                        return None  # "i like red colour for my home": not about music
                    return self._content(rest).result(intent, conf, norm)
        return None

    def _play_intent(self, s: str, norm: str) -> IntentResult | None:
        m = _PLAY_RE.match(s)
        if not m:
            return None
        rest = _AFTER_VERB.sub("", m.group("rest").strip()).strip()
        for intent, pattern, conf in self._controls:  # "play the next song", "play it again"
            if intent in ("next", "previous") and pattern.match(s):
                return IntentResult(intent, confidence=conf, text=norm)
        if self._recommend.search(rest):
            return self._recommend_intent(rest, norm)
        if _NOT_A_REQUEST_RE.search(rest):
            return IntentResult("none", confidence=0.7, text=norm)  # "i'd like to hear what you said again"
        c = self._content(rest)
        if _NON_MUSIC_RE.search(rest) and not self._looks_musical(rest) and not any(
                e.score >= self.options.bare_entity_min_score and not _NON_MUSIC_ONLY_RE.match(e.heard)
                for e in c.entities):
            return IntentResult("none", confidence=0.7, text=norm)  # "play the next episode", "turn on the lights"
        if m.group("svc"):
            c.add("service", m.group("svc"), m.group("svc"))
        if m.group("verb") in STRONG_PLAY_VERBS:
            return c.result("play", 0.9, norm)
        # A weak verb ("i want", "give me", "run") needs music words or a whole catalog name of 2+ words.
        if self._has_music_word(rest):
            return c.result("play", 0.8, norm)
        close = [e.score for e in c.entities if e.how != "phonetic" and e.score >= WEAK_VERB_ENTITY_MIN
                 and (e.kind == "artist" or len(e.heard.split()) >= 2) and not c.query]
        if close:
            return c.result("play", 0.7 * max(close), norm)
        return None  # "i want pizza", "give me the time": not a music request

    def _recommend_intent(self, s: str, norm: str) -> IntentResult | None:
        m = self._recommend.search(s)
        if m:
            return self._content(s[: m.start()] + BARRIER + s[m.end():]).result("recommend", 0.9, norm)
        f = self._feeling.match(s)
        if f and (_MOOD_RE.search(f.group("rest")) or self._genre_re.search(f.group("rest"))):
            c = self._content(f.group("rest"))
            if "mood" in c.slots or "genre" in c.slots:
                return c.result("recommend", 0.8, norm)
        return None

    def _bare_intent(self, s: str, norm: str) -> IntentResult | None:
        """No verb: "sad songs" / "some jazz" recommend; "adele" plays."""
        words = s.split()
        if len(words) > BARE_MAX_WORDS or _NON_MUSIC_RE.search(s):
            return None
        c = self._content(s, threshold=self.options.bare_entity_min_score, fallback=False)
        leftover = [w for w in c.query.split() if w not in _CONTENT_FILLERS]
        # A bare name plays only if it is unmistakable: an artist, or a title of three words or more
        # ("alarms", "whatever" and "good food" are song titles too).
        sure = [e.score for e in c.entities if e.score >= BARE_NAME_MIN and e.heard == _trim(s, _ARTICLES)
                and (e.kind == "artist" or len(e.heard.split()) >= 3)]
        if sure and not leftover:
            return c.result("play", 0.6 * max(sure), norm)
        # "sad songs", "some jazz", "something relaxing": a mood or genre, and nothing else.
        if {"mood", "genre"} & set(c.slots) and not leftover and (len(words) <= 3 or _MUSIC_WORD_RE.search(s)):
            return c.result("recommend", 0.6, norm)
        if c.about and _MUSIC_WORD_RE.match(s):  # "songs about summer love"
            return c.result("recommend", 0.7, norm)
        return None

    # ---------------------------------------------------------------- content
    def _has_music_word(self, s: str) -> bool:
        return bool(_MUSIC_WORD_RE.search(s) or _MOOD_RE.search(s) or self._genre_re.search(s))

    @staticmethod
    def _looks_musical(s: str) -> bool:
        """A non-music object word, but the request is still for music ("play the song games by disturbed")."""
        return bool(re.search(r"\b(?:songs?|music|album|tracks?|playlist)\b", s)) and not re.search(
            r"\b(?:podcasts?|audio ?books?|episodes?|radio|station|news)\b", s)

    def _names_entity(self, s: str) -> bool:
        """True when the text closely names a catalog artist or title."""
        if self.gazetteer is None:
            return False
        return any(h.score >= self.options.bare_entity_min_score
                   for kind in ("artist", "track") for h in self.gazetteer.match(s, kind, limit=1))

    def _content(self, text: str, threshold: float | None = None, fallback: bool = True) -> "_Content":
        """Slots from the content of a request ("something sad by adele on spotify")."""
        c = _Content(" " + " ".join(text.split()) + " ")
        whole = _trim(c.rest, _ARTICLES)
        if whole:
            best, alts = self._best_entity(whole, c, strict=self._descriptive_only(whole), threshold=WHOLE_MATCH_MIN)
            if best is not None:  # "shape of you", "don't stop me now": a name, not cue words
                c.add(best.kind, best.name, whole, best, alts)
                c.rest = ""
                return c

        def first(patterns, kind: str, accept) -> None:
            for pattern in patterns:
                for m in pattern.finditer(c.rest):
                    span = m.group("v").strip()
                    if not span or not accept(span):
                        continue
                    hits = self._resolve(span, kind) if kind in RESOLVED_KINDS else []
                    best = hits[0] if hits else None
                    c.take(kind, m, best.name if best else span, best, hits[1:])
                    if m.groupdict().get("item"):  # "the song X": Snips tags "song" as music_item
                        c.add("music_item", m.group("item"), m.group("item"))
                    return

        m = _SERVICE_RE.search(c.rest)
        if m:
            c.take("service", m)
        first(_PLAYLIST_RES, "playlist", lambda v: not _SORT_RE.fullmatch(v) and v not in _CONTENT_FILLERS)
        first(_ALBUM_RES, "album", lambda v: not _SORT_RE.fullmatch(v) and not self._descriptive_only(v))
        for m in find_years(c.rest):
            cue = _YEAR_CUE_RE.search(c.rest, max(0, m.start() - 14))
            c.take("year", cue if cue and cue.start() <= m.start() else m)
            break
        m = _ABOUT_RE.search(c.rest)
        if m:
            c.about = m.group("v").strip()
            c.cut(m)
        first(_TRACK_RES, "track", lambda v: not self._descriptive_only(v))
        first(_ARTIST_RES, "artist", lambda v: not self._descriptive_only(v) and not _ITEM_RE.fullmatch(v))
        self._untyped(c, threshold or self.options.content_entity_min_score, fallback)
        for kind, pattern in (("genre", self._genre_re), ("sort", _SORT_RE), ("mood", _MOOD_RE),
                              ("music_item", _ITEM_RE)):  # genre first: "soft rock", "classic rock"
            m = pattern.search(c.rest)
            if m:
                c.take(kind, m, L.MOOD_WORDS[m.group("v")] if kind == "mood" else None)
        return c

    def _resolve(self, span: str, kind: str) -> list[EntityMatch]:
        """Catalog names a cued span ("by adel") may mean, best first."""
        if self.gazetteer is None:
            return []
        return self.gazetteer.match(span, kind, limit=ALTERNATIVES + 1, min_score=self.options.entity_min_score)

    def _descriptive_only(self, span: str) -> bool:
        """A span made only of fillers, moods, genres, sorts and items ("some sad")."""
        rest = _MOOD_RE.sub(" ", span)
        rest = self._genre_re.sub(" ", rest)
        rest = _SORT_RE.sub(" ", rest)
        rest = _ITEM_RE.sub(" ", rest)
        rest = _YEAR_RE.sub(" ", rest)
        return all(w in _CONTENT_FILLERS or w in _CUE_WORDS for w in rest.split())

    def _untyped(self, c: "_Content", threshold: float, fallback: bool = True) -> None:
        """Resolve the uncued pieces of the content against the catalog."""
        for piece in [p.strip() for p in c.rest.split("|")]:
            span = _trim(piece, _CONTENT_FILLERS | _CUE_WORDS)
            if not span:
                continue
            descriptive = self._descriptive_only(span)
            best, alts = self._best_entity(span, c, strict=descriptive, threshold=threshold)
            lightly = _trim(piece, _ARTICLES)  # "one more time": fillers can be part of a name
            if lightly != span:
                other, other_alts = self._best_entity(lightly, c, strict=self._descriptive_only(lightly),
                                                      threshold=threshold)
                if other is not None and (best is None or other.score >= best.score):
                    best, alts, span = other, other_alts, lightly
            if best is not None:
                c.add(best.kind, best.name, span, best, alts)
                c.rest = c.rest.replace(span, BARRIER, 1)
                continue
            if descriptive or not fallback:
                continue
            # Not in the catalog and not a mood/genre: the fallback kind, minus descriptive words.
            core = self._strip_descriptive(lightly)
            # "play yo ho by the new york pops": with the artist named, the unknown name is the title.
            kind = next((k for k in (self.options.unresolved_kind, "track") if k not in c.slots), None)
            if core and kind and len(core.split()) <= UNRESOLVED_MAX_WORDS:
                c.add(kind, core, core)
                c.rest = c.rest.replace(core, BARRIER, 1)

    def _strip_descriptive(self, span: str) -> str:
        """The name-like part of an unknown span: leading moods, genres, sorts and items dropped
        ("sad adele songs" -> "adele songs"), cut at the first clause word ("micheal jackson can
        you save ..." -> "micheal jackson"); "" when it starts like a clause ("that is playing")."""
        text = span
        for pattern in (_MOOD_RE, self._genre_re, _SORT_RE, _ITEM_RE):
            m = pattern.match(text)
            while m:
                text = text[m.end():].strip()
                m = pattern.match(text)
        words = _trim(text, _EDGE_FILLERS).split()
        if words and words[0] in _CLAUSE_STARTS:
            return ""
        cut = next((i for i, w in enumerate(words) if w in _CLAUSE_BREAKS), len(words))
        return _trim(" ".join(words[:cut]), _EDGE_FILLERS)

    def _best_entity(self, span: str, c: "_Content", strict: bool,
                     threshold: float) -> tuple[EntityMatch | None, list[EntityMatch]]:
        """The catalog entity an uncued span names, if any name is close enough, and
        the runners-up. A span that is only a mood or genre word ("happy") is an
        entity only when it exactly names a song by the artist already asked for."""
        if self.gazetteer is None:
            return None, []
        artist_ids = next((set(e.song_ids) for e in c.entities if e.kind == "artist"), None)
        if strict and artist_ids is None and len(span.split()) < 2:
            return None, []  # a lone mood/genre word with no artist named is never a title
        ranked: list[tuple[float, EntityMatch]] = []  # (score with the artist agreement, match)
        for kind in ("track", "artist", "album"):
            if kind in c.slots:
                continue
            for hit in self.gazetteer.match(span, kind, limit=ALTERNATIVES + 1, min_score=threshold - ALTERNATIVE_MARGIN):
                score = hit.score
                if kind == "track" and artist_ids is not None:
                    score += ARTIST_AGREES_BONUS if artist_ids & set(hit.song_ids) else -ARTIST_AGREES_BONUS / 2
                ranked.append((score, hit))
        ranked.sort(key=lambda t: -t[0])
        hits = [hit for _, hit in ranked]
        if not ranked or ranked[0][0] < threshold:
            return None, hits[:ALTERNATIVES]
        best = hits[0]
        exact_name = best.score >= 0.99 and len(span.split()) >= 2  # "one dance" is a title, "happy" a mood
        if strict and not exact_name and not (best.kind == "track" and artist_ids
                                              and artist_ids & set(best.song_ids) and best.score >= 0.99):
            return None, []
        return best, hits[1: ALTERNATIVES + 1]


class _Content:
    """Slots being cut out of a request's content; `rest` is what is left."""

    def __init__(self, text: str):
        self.rest = text
        self.slots: dict[str, str] = {}
        self.heard: dict[str, str] = {}
        self.entities: list[EntityMatch] = []
        self.alternatives: list[EntityMatch] = []
        self.about = ""

    def cut(self, m: re.Match) -> None:
        self.rest = self.rest[: m.start()] + BARRIER + self.rest[m.end():]

    def add(self, kind: str, value: str, heard: str, entity: EntityMatch | None = None,
            alternatives: list[EntityMatch] = ()) -> None:
        if kind in self.slots:
            return
        self.slots[kind] = value
        self.heard[kind] = heard
        if entity is not None:
            self.entities.append(entity)
        self.alternatives.extend(alternatives)

    def take(self, kind: str, m: re.Match, value: str | None = None, entity: EntityMatch | None = None,
             alternatives: list[EntityMatch] = ()) -> None:
        span = m.group("v").strip()
        self.add(kind, span if value is None else value, span, entity, alternatives)
        self.cut(m)

    @property
    def query(self) -> str:
        """Words no slot took, plus an "about ..." topic: free text for semantic search."""
        leftover = [w for w in self.rest.replace("|", " ").split() if w not in _CONTENT_FILLERS and w not in _CUE_WORDS]
        return " ".join(w for w in (self.about, " ".join(leftover)) if w).strip()

    def result(self, intent: str, confidence: float, norm: str) -> IntentResult:
        return IntentResult(intent, dict(self.slots), confidence, norm, dict(self.heard), tuple(self.entities),
                            self.query, tuple(self.alternatives))
