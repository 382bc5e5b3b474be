"""Word lists the intent parser matches, all in `normalize_text` form.

Lists are data, kept here so the grammar in `parser.py` stays readable. Every
entry is lowercase ASCII with numbers spelled out, the way both the speech
recognizer and `normalize_text` write them ("eighties", "r and b").
"""

from __future__ import annotations

# Canonical mood -> words and phrases that ask for it. The recommender maps the
# canonical mood to audio-feature targets (assistant/recommend/mood.py).
MOODS: dict[str, tuple[str, ...]] = {
    "sad": ("sad", "sadder", "saddest", "sadness", "melancholy", "melancholic", "depressing", "depressed",
            "gloomy", "heartbroken", "heartbreak", "heart broken", "blue", "down", "crying", "cry", "tearjerker",
            "somber", "sombre", "lonely", "miserable", "unhappy", "emotional", "weepy", "tragic", "moody"),
    "happy": ("happy", "happier", "cheerful", "joyful", "joyous", "feel good", "feelgood", "good mood", "sunny",
              "uplifting", "positive", "fun", "funny", "bright", "glad", "merry", "optimistic", "jolly"),
    "energetic": ("energetic", "energizing", "energising", "pumped", "pump me up", "hype", "hyped", "workout",
                  "work out", "gym", "running", "run", "intense", "powerful", "upbeat", "fast", "lively",
                  "exciting", "motivating", "motivational", "high energy", "banger", "bangers"),
    "calm": ("calm", "calming", "relaxing", "relax", "relaxed", "chill", "chilled", "chill out", "chillout",
             "mellow", "peaceful", "soothing", "soft", "quiet", "gentle", "sleep", "sleepy", "study", "studying",
             "focus", "lazy", "slow", "easy", "ambient", "tranquil", "serene", "laid back", "cozy", "cosy"),
    "romantic": ("romantic", "romance", "love songs", "love song", "sensual", "sexy", "date night", "intimate",
                 "tender", "sweet"),
    "angry": ("angry", "aggressive", "rage", "mad", "furious", "heavy", "hard", "dark", "edgy", "rebellious"),
    "party": ("party", "partying", "dance", "danceable", "dancing", "club", "clubbing", "groovy", "funky",
              "festive", "celebration", "celebrate", "dance floor"),
}

# Phrase -> canonical mood, for lookup.
MOOD_WORDS: dict[str, str] = {w: mood for mood, words in MOODS.items() for w in words}

# Words Snips tags as music_item (plus plurals); "music" itself is not a slot in Snips.
MUSIC_ITEMS: tuple[str, ...] = (
    "song", "songs", "track", "tracks", "tune", "tunes", "album", "albums", "record", "records", "single",
    "singles", "ep", "eps", "soundtrack", "soundtracks", "sound track", "ballad", "ballads", "chant", "chants",
    "melody", "melodies", "symphony", "symphonies", "movement", "movements", "theme", "theme song", "theme tune",
    "concerto", "concertos", "artist", "band", "playlist", "hit", "hits", "number", "jam", "jams",
)

# Streaming services named in requests ("on spotify"); normalized spellings.
SERVICES: tuple[str, ...] = (
    "spotify", "youtube", "you tube", "youtube music", "deezer", "netflix", "itunes", "i tunes", "apple music",
    "google music", "google play music", "groove shark", "grooveshark", "zvooq", "lastfm", "last fm", "slacker",
    "pandora", "iheart", "iheartradio", "i heart radio", "vimeo", "soundcloud", "sound cloud", "tidal",
    "amazon music", "napster", "bandcamp",
)

# Sort words (Snips "sort"): order or select by popularity or recency.
SORTS_POPULAR: tuple[str, ...] = (
    "most popular", "popular", "top", "best", "greatest", "good", "biggest", "famous", "top five", "top ten",
    "top twenty", "top fifty", "top hundred", "top one hundred", "top forty", "hottest", "classic", "classics",
)
SORTS_RECENT: tuple[str, ...] = ("newest", "latest", "new", "last", "recent", "most recent", "brand new", "fresh")
SORTS_OLD: tuple[str, ...] = ("oldest", "old", "earliest", "first")

# Genres understood even when the catalog has none of them; the catalog's own
# genres are added at run time.
GENRES: tuple[str, ...] = (
    "pop", "rock", "jazz", "blues", "hip hop", "rap", "country", "classical", "metal", "heavy metal", "punk",
    "reggae", "reggaeton", "soul", "funk", "disco", "electronic", "electronica", "edm", "house", "techno",
    "trance", "dubstep", "drum and bass", "folk", "indie", "indie rock", "indie pop", "alternative",
    "alternative rock", "r and b", "r n b", "rnb", "randb", "latin", "k pop", "kpop", "j pop", "gospel", "opera", "grunge", "ska",
    "bluegrass", "swing", "salsa", "samba", "bossa nova", "tango", "flamenco", "emo", "hardcore", "garage",
    "trap", "drill", "grime", "afrobeat", "afrobeats", "dancehall", "synthpop", "synth pop", "new wave",
    "motown", "doo wop", "rockabilly", "rock and roll", "punk rock", "pop punk", "hard rock", "soft rock",
    "dance pop", "electro", "lo fi", "lofi", "chillhop", "acoustic", "instrumental", "orchestral", "piano",
    "christmas", "holiday", "children's", "kids", "soundtrack", "musical", "show tunes", "world", "arabic",
    "brazilian", "french", "celtic", "irish", "gaming", "easy listening", "industrial", "gothic", "psychedelic",
    "progressive", "prog rock", "experimental", "ambient", "chanson", "oldies", "nu metal", "death metal",
    "black metal", "thrash metal", "hip hop pop", "pop rap", "neo soul", "contemporary r and b", "country pop",
    "britpop", "shoegaze", "post rock", "math rock", "big band", "bebop", "smooth jazz", "acid jazz",
)

# Decade words -> first year of the decade ("eighties" -> 1980; "twenties" -> 1920).
DECADES: dict[str, int] = {
    "twenties": 1920, "thirties": 1930, "forties": 1940, "fourties": 1940, "fifties": 1950, "sixties": 1960,
    "seventies": 1970, "eighties": 1980, "nineties": 1990, "two thousands": 2000, "noughties": 2000,
    "aughts": 2000, "two thousand tens": 2010, "twenty tens": 2010, "twenty twenties": 2020,
}

# Greetings, wake words and politeness stripped from the start of an utterance.
LEADING_FILLERS: tuple[str, ...] = (
    "hello", "hi", "hey", "hey there", "ok", "okay", "yo", "please", "alexa", "siri", "google", "ok google",
    "hey google", "computer", "assistant", "hey music", "jarvis", "olly", "so", "um", "uh", "well",
    "now", "just", "and", "then", "oh", "right", "good morning", "good evening", "excuse me", "thanks",
    "thank you",
)
# Phrases that introduce a request; they carry no intent on their own.
REQUEST_OPENERS: tuple[str, ...] = (
    "can you", "could you", "would you", "will you", "can you please", "could you please", "would you please",
    "i want you to", "i'd like you to", "i would like you to", "i need you to", "go ahead and", "please",
    "kindly", "try to", "i'd like to", "i would like to", "i want to", "i wanna", "i need to", "let me",
    "let's", "lets", "let us", "can i", "could i", "may i", "i'd love to", "i would love to", "do you mind",
    "why don't you", "why not",
)
TRAILING_FILLERS: tuple[str, ...] = (
    "please", "thanks", "thank you", "right now", "for me", "okay", "ok", "then", "again please",
)

# Objects of "play" that this assistant does not play: the request is not for music.
NON_MUSIC_OBJECTS: tuple[str, ...] = (
    "podcast", "podcasts", "episode", "episodes", "audiobook", "audiobooks", "audio book", "audio books",
    "book", "books", "chapter", "novel", "game", "games", "chess", "poker", "trivia", "quiz", "radio",
    "station", "stations", "fm", "news", "video", "videos", "movie", "movies", "film", "films", "show",
    "tv", "television", "lecture", "sermon", "story", "stories", "bedtime story", "ted talk", "audio drama",
    "volume", "light", "lights", "lamp", "alarm", "alarms", "timer", "reminder", "weather", "sports", "match",
    "message", "messages", "voicemail", "email", "emails", "recording", "meeting", "calendar", "recipe",
    "joke", "jokes", "riddle", "sentence", "instruction", "utterance", "list", "lists", "screen", "vacuum",
    "cleanup", "cleaning", "lighting", "monopoly", "scrabble", "sudoku", "crossword",
    "cricket", "football", "soccer", "basketball", "baseball", "hockey", "tennis", "golf",
)

# Words that make up no content in a request ("play [some] [good] [music] [for me]").
CONTENT_FILLERS: tuple[str, ...] = (
    "a", "an", "the", "some", "any", "something", "anything", "me", "us", "my", "few", "couple", "of", "bit",
    "little", "music", "musics", "kind", "kinds", "sort", "type", "types", "style", "please", "for", "to",
    "listen", "hear", "that", "which", "is", "are", "has", "have", "with", "good", "nice", "great", "cool",
    "awesome", "stuff", "songs", "song", "tunes", "tracks", "track", "one", "ones", "sounds", "sound",
    "really", "very", "more", "quite", "pretty", "would", "be", "lot", "lots", "all", "on", "in", "it",
    "i", "want", "like", "love", "need", "feel", "feeling", "mood", "am", "i'm", "im", "and", "or", "but",
    "so", "just", "now", "this", "these", "those", "there", "here", "today", "tonight", "again",
)
