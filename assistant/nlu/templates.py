"""Command phrase templates and slot vocabulary: plain data, no heavy imports.

Shared by the speech corpus builder (`assistant.training.texts`, which fills
the templates with catalog names to make training sentences), and later by the
decoder's command language model and the intent parser.

Templates use `{slot}` placeholders with the Snips 2017 slot names (artist,
album, track, playlist, genre, year, sort, service, music_item) plus `mood`.
`{wake}` is an optional leading wake phrase ("hello", "hey", "" ...).
Fixed phrases (no slots) are templates too.

Intent names follow docs/DESIGN.md: play, recommend, similar, next, previous,
pause, resume, stop, like, dislike, volume_up, volume_down, what_is_playing.
"""

from __future__ import annotations

INTENTS: tuple[str, ...] = (
    "play", "recommend", "similar", "next", "previous", "pause", "resume", "stop",
    "like", "dislike", "volume_up", "volume_down", "what_is_playing", "none",
)

# Leading words people put before a command. "" = no wake word.
WAKE_WORDS: tuple[str, ...] = (
    "", "", "", "", "hello", "hey", "hi", "ok", "okay", "please", "hey music",
    "hello there", "excuse me", "um", "so",
)

# Mood words (the `mood` slot). "sad" is the seed example's mood.
MOODS: tuple[str, ...] = (
    "sad", "happy", "chill", "relaxing", "relaxed", "upbeat", "energetic", "romantic", "calm",
    "angry", "melancholic", "melancholy", "mellow", "dark", "uplifting", "cheerful", "peaceful",
    "groovy", "moody", "sleepy", "dreamy", "emotional", "heartbroken", "joyful", "gloomy",
    "quiet", "loud", "soft", "slow", "fast", "fun", "funky", "lonely", "nostalgic", "hopeful",
    "motivating", "motivational", "aggressive", "soothing", "depressing", "feel good",
    "danceable", "party", "workout", "summer", "rainy day", "late night", "love",
)

# Genre words beyond those in the catalog (the catalog's own genres are added by texts.py).
GENRES: tuple[str, ...] = (
    "pop", "rock", "hip hop", "rap", "r and b", "jazz", "blues", "classical", "country",
    "electronic", "dance", "edm", "house", "techno", "metal", "heavy metal", "punk", "folk",
    "indie", "indie rock", "alternative", "soul", "funk", "reggae", "reggaeton", "latin",
    "k pop", "j pop", "disco", "gospel", "lo fi", "ambient", "acoustic", "trap", "grunge",
    "opera", "salsa", "afrobeats", "soundtrack", "instrumental", "piano", "swing", "trance",
)

MUSIC_ITEMS: tuple[str, ...] = (
    "song", "track", "tune", "album", "playlist", "music", "songs", "tracks", "record", "single",
)

SORTS: tuple[str, ...] = (
    "newest", "latest", "most popular", "best", "top", "greatest", "new", "old", "popular",
    "top ten", "last",
)

SERVICES: tuple[str, ...] = (
    "spotify", "youtube", "deezer", "pandora", "soundcloud", "itunes", "my library",
)

YEARS: tuple[str, ...] = (
    "the eighties", "the nineties", "the seventies", "the sixties", "two thousand", "two thousand ten",
    "nineteen ninety nine", "twenty nineteen", "two thousand five", "the two thousands",
    "last year", "this year",
)

PLAYLISTS: tuple[str, ...] = (
    "my favorites", "favorites", "workout", "road trip", "chill vibes", "party mix", "morning",
    "running", "study", "sleep", "dinner", "summer hits", "throwbacks", "driving", "focus",
    "my jams", "rainy day", "love songs", "gym", "weekend",
)

# Templates per intent. Slots: {artist} {track} {album} {genre} {mood} {playlist}
# {year} {sort} {service} {music_item} and the optional leading {wake}.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "play": (
        "{wake} play {track}",
        "{wake} play {track} by {artist}",
        "{wake} play {artist}",
        "{wake} play some {artist}",
        "{wake} play something by {artist}",
        "{wake} play songs by {artist}",
        "{wake} play the song {track}",
        "{wake} play the song {track} by {artist}",
        "{wake} play {track} from {artist}",
        "{wake} can you play {track}",
        "{wake} can you play {track} by {artist}",
        "{wake} could you play {artist}",
        "{wake} i want to hear {track}",
        "{wake} i want to listen to {artist}",
        "{wake} i'd like to hear {track} by {artist}",
        "{wake} put on {track}",
        "{wake} put on some {genre}",
        "{wake} put on some {artist}",
        "{wake} play some {genre}",
        "{wake} play some {genre} music",
        "{wake} play {genre} music",
        "{wake} play {mood} music",
        "{wake} play some {mood} music",
        "{wake} play a {mood} song",
        "{wake} play something {mood}",
        "{wake} play something {mood} by {artist}",
        "{wake} play a {mood} {genre} song",
        "{wake} play {mood} {genre}",
        "{wake} play {genre} from {year}",
        "{wake} play music from {year}",
        "{wake} play the {sort} {music_item} by {artist}",
        "{wake} play the {sort} {genre} songs",
        "{wake} play {artist} on {service}",
        "{wake} play {track} on {service}",
        "{wake} play my {playlist} playlist",
        "{wake} play the {playlist} playlist",
        "{wake} start my {playlist} playlist",
        "{wake} shuffle my {playlist} playlist",
        "{wake} shuffle {artist}",
        "{wake} let's hear {track}",
        "{wake} let's listen to some {genre}",
        "{wake} listen to {track} by {artist}",
        "{wake} turn on some {genre}",
        "{wake} turn on some music",
        "{wake} play some music",
        "{wake} play music",
        "{wake} start the music",
        "{wake} i need some {mood} music",
        "{wake} play {artist}'s {sort} song",
        "{wake} play the album {album}",
        "{wake} play the album {album} by {artist}",
        "{wake} add {track} to my {playlist} playlist",
        "{wake} add this song to {playlist}",
        "{wake} add {artist} to my {playlist} playlist",
        "{wake} save this song to my {playlist} playlist",
        "{wake} queue {track} by {artist}",
        "{wake} play {track} next",
    ),
    "recommend": (
        "{wake} suggest me a {mood} song",
        "{wake} suggest a {mood} song",
        "{wake} suggest me some {mood} songs",
        "{wake} suggest me a {genre} song",
        "{wake} suggest me something {mood}",
        "{wake} suggest me a song",
        "{wake} suggest something to listen to",
        "{wake} recommend me a {mood} song",
        "{wake} recommend a {mood} song",
        "{wake} recommend some {genre}",
        "{wake} recommend me some {mood} {genre}",
        "{wake} recommend something by {artist}",
        "{wake} recommend a song by {artist}",
        "{wake} recommend me a song",
        "{wake} can you recommend a {mood} song",
        "{wake} can you suggest some {genre} music",
        "{wake} give me a {mood} song",
        "{wake} give me something {mood}",
        "{wake} give me some {genre}",
        "{wake} find me a {mood} song",
        "{wake} find me some {mood} {genre}",
        "{wake} find me a song by {artist}",
        "{wake} i'm feeling {mood}",
        "{wake} i'm in a {mood} mood",
        "{wake} i'm feeling {mood} play something",
        "{wake} what should i listen to",
        "{wake} what's a good {mood} song",
        "{wake} what's a good {genre} song",
        "{wake} surprise me",
        "{wake} play something i'd like",
        "{wake} pick a song for me",
        "{wake} choose a {mood} song for me",
        "{wake} i want something {mood}",
        "{wake} i want a {mood} song",
        "{wake} i need a {mood} song",
        "{wake} any {mood} songs",
        "{wake} show me {mood} songs",
        "{wake} music for a {mood} day",
        "{wake} songs for {playlist}",
        "{wake} something to dance to",
        "{wake} something to study to",
        "{wake} something for a {mood} evening",
        "{wake} the {sort} {genre} songs",
        "{wake} {mood} songs from {year}",
    ),
    "similar": (
        "{wake} something like {track}",
        "{wake} play something like {track}",
        "{wake} play something like {artist}",
        "{wake} songs like {track}",
        "{wake} songs like {track} by {artist}",
        "{wake} more like this",
        "{wake} more like this one",
        "{wake} play more like this",
        "{wake} more songs like this",
        "{wake} more of this",
        "{wake} play more songs like this",
        "{wake} something similar",
        "{wake} play something similar",
        "{wake} something similar to {track}",
        "{wake} artists like {artist}",
        "{wake} music similar to {artist}",
        "{wake} find songs similar to {track}",
        "{wake} play similar music",
        "{wake} recommend something like {track}",
        "{wake} suggest songs like {artist}",
        "{wake} more from this artist",
        "{wake} play more by {artist}",
        "{wake} keep playing stuff like this",
    ),
    "next": (
        "{wake} skip", "{wake} skip this", "{wake} skip this song", "{wake} skip it",
        "{wake} next", "{wake} next song", "{wake} next track", "{wake} play the next song",
        "{wake} go to the next song", "{wake} skip to the next one", "{wake} next one please",
        "{wake} i don't want this song", "{wake} change the song", "{wake} another song",
        "{wake} play another one", "{wake} skip ahead", "{wake} move on",
    ),
    "previous": (
        "{wake} previous song", "{wake} go back", "{wake} play the previous song",
        "{wake} previous track", "{wake} back to the last song", "{wake} play that again",
        "{wake} replay that song", "{wake} play the last song again", "{wake} go back one song",
        "{wake} repeat this song", "{wake} start this song over",
    ),
    "pause": (
        "{wake} pause", "{wake} pause the music", "{wake} pause this song", "{wake} pause it",
        "{wake} hold on", "{wake} wait", "{wake} pause playback", "{wake} hold the music",
        "{wake} pause for a moment", "{wake} pause the song",
    ),
    "resume": (
        "{wake} resume", "{wake} resume the music", "{wake} continue", "{wake} keep playing",
        "{wake} unpause", "{wake} play again", "{wake} continue playing", "{wake} resume playback",
        "{wake} carry on", "{wake} start again", "{wake} go on",
    ),
    "stop": (
        "{wake} stop", "{wake} stop the music", "{wake} stop playing", "{wake} stop it",
        "{wake} turn off the music", "{wake} turn the music off", "{wake} that's enough",
        "{wake} enough music", "{wake} silence", "{wake} quiet please", "{wake} shut it off",
        "{wake} stop this song", "{wake} end the music", "{wake} cancel",
    ),
    "like": (
        "{wake} i love this song", "{wake} i like this song", "{wake} i love this",
        "{wake} i like this", "{wake} this is great", "{wake} great song", "{wake} love it",
        "{wake} i love {artist}", "{wake} i really like this one", "{wake} add this to my favorites",
        "{wake} save this song", "{wake} like this song", "{wake} thumbs up",
        "{wake} this song is awesome", "{wake} i love {track}", "{wake} remember that i like this",
        "{wake} i like {genre}", "{wake} i love {mood} songs", "{wake} this one is amazing",
        "{wake} favorite this song", "{wake} nice song",
    ),
    "dislike": (
        "{wake} i don't like this song", "{wake} i hate this song", "{wake} i don't like this",
        "{wake} thumbs down", "{wake} not this one", "{wake} this is terrible",
        "{wake} i hate {artist}", "{wake} never play this again", "{wake} don't play this again",
        "{wake} i don't like {genre}", "{wake} dislike", "{wake} this song is boring",
        "{wake} not a fan of this", "{wake} ban this song", "{wake} no more {artist}",
    ),
    "volume_up": (
        "{wake} turn it up", "{wake} turn up the volume", "{wake} louder", "{wake} volume up",
        "{wake} make it louder", "{wake} increase the volume", "{wake} turn the music up",
        "{wake} a bit louder", "{wake} louder please", "{wake} pump it up", "{wake} raise the volume",
        "{wake} i can't hear it", "{wake} crank it up", "{wake} turn it up a little",
    ),
    "volume_down": (
        "{wake} turn it down", "{wake} turn down the volume", "{wake} quieter", "{wake} volume down",
        "{wake} make it quieter", "{wake} lower the volume", "{wake} decrease the volume",
        "{wake} turn the music down", "{wake} a bit quieter", "{wake} softer please",
        "{wake} it's too loud", "{wake} not so loud", "{wake} reduce the volume",
        "{wake} turn it down a little", "{wake} mute", "{wake} mute the music",
    ),
    "what_is_playing": (
        "{wake} what's playing", "{wake} what is playing", "{wake} what song is this",
        "{wake} what's this song", "{wake} who sings this", "{wake} who is this",
        "{wake} what's the name of this song", "{wake} who's singing", "{wake} what am i listening to",
        "{wake} which song is this", "{wake} what album is this", "{wake} who is the artist",
        "{wake} tell me what's playing", "{wake} what's this track", "{wake} name this song",
        "{wake} what's playing right now",
    ),
}

# The seed's example command. texts.py checks that every one of its words occurs
# in training sentences.
SEED_EXAMPLE = "hello suggest me a sad song"

# Intent names that carry music commands in the NLU data sets read by texts.py.
SLURP_MUSIC_INTENTS: tuple[str, ...] = (
    "play_music", "music_query", "music_likeness", "music_dislikeness", "music_settings",
    "play_radio", "audio_volume_up", "audio_volume_down", "audio_volume_mute", "music",
    "likeness", "general_commandstop",
)
HWU64_MUSIC_FILES: tuple[str, ...] = (
    "play_music", "music_query", "music_likeness", "music_settings", "play_radio",
    "audio_volume_up", "audio_volume_down", "audio_volume_mute", "general_commandstop",
)
SNIPS_MUSIC_INTENTS: tuple[str, ...] = ("PlayMusic", "AddToPlaylist")

# Assistant names in those data sets, swapped for our wake words.
FOREIGN_WAKE_NAMES: tuple[str, ...] = ("olly", "siri", "alexa", "google", "pda name")

# ---------------------------------------------------------------------------
# Extra templates for the learned parser only (not used by the speech corpus):
# negation and exclusions, and questions about the song playing. Slot spans of an
# exclusion are tagged like any other slot; `assistant.nlu.negation` decides that
# they are excluded.
NLU_TEMPLATES: dict[str, tuple[str, ...]] = {
    "play": (
        "{wake} play {artist} but not {track}", "{wake} play some {genre} but no {genre}",
        "{wake} play anything but {genre}", "{wake} play something other than {artist}",
        "{wake} play {genre} but not {artist}", "{wake} play something {mood} but not {genre}",
        "{wake} play songs by {artist} except {track}", "{wake} play {genre} without {artist}",
        "{wake} play music but no {genre}", "{wake} play anything except {artist}",
        "{wake} play a {mood} {mood} song", "{wake} play something {mood} and {mood}",
        "{wake} play me a {mood} {music_item}", "{wake} put on some {mood} {mood} music",
        "{wake} play {artist} not {artist}", "{wake} play something by {artist} instead of {artist}",
    ),
    "recommend": (
        "{wake} anything but {genre}", "{wake} anything but {artist}", "{wake} something other than {genre}",
        "{wake} recommend something but not {genre}", "{wake} suggest a song that is not {genre}",
        "{wake} no {genre} please", "{wake} something {mood} but no {genre}",
        "{wake} recommend some {genre} but nothing by {artist}", "{wake} suggest something without {genre}",
        "{wake} anything except {genre}", "{wake} i want something {mood} not {mood}",
        "{wake} suggest a {mood} {mood} song", "{wake} songs about summer love", "{wake} play songs about heartbreak",
        "{wake} music about friendship", "{wake} something about the ocean", "{wake} songs about driving at night",
        "{wake} recommend songs about rain", "{wake} any songs about {mood} days",
    ),
    "next": (
        "{wake} don't play {artist}", "{wake} do not play {artist}", "{wake} stop playing {artist}",
        "{wake} skip {artist}", "{wake} don't play {track}", "{wake} no {artist} right now",
        "{wake} not {artist} please", "{wake} skip this one", "{wake} something else please",
    ),
    "dislike": (
        "{wake} i don't like this one", "{wake} i do not like this song", "{wake} i don't like it",
        "{wake} i don't like {artist}", "{wake} i really don't like {genre}", "{wake} i hate {genre}",
        "{wake} i can't stand {artist}", "{wake} i don't like this one at all", "{wake} i don't love this",
        "{wake} not my kind of music", "{wake} i don't want to hear {artist} again",
        "{wake} never play {artist} again", "{wake} i don't like {track}",
    ),
    "like": (
        "{wake} i like this one", "{wake} i really like {artist}", "{wake} i love {genre}",
    ),
    "similar": (
        "{wake} more like {track}", "{wake} more songs like this one", "{wake} similar songs but not by {artist}",
    ),
    "what_is_playing": (
        "{wake} what album is this from", "{wake} what album is this song from", "{wake} which album is this on",
        "{wake} when did this come out", "{wake} when did this song come out", "{wake} what year is this from",
        "{wake} what year is this song from", "{wake} when was this released", "{wake} how old is this song",
        "{wake} who sings this song", "{wake} who is singing", "{wake} who is this artist",
        "{wake} what genre is this", "{wake} what kind of music is this", "{wake} what's the name of this song",
        "{wake} what song is playing", "{wake} who sings {track}", "{wake} who sang {track}",
        "{wake} what album is {track} on", "{wake} when did {track} come out", "{wake} who performs this",
        "{wake} what is this song called", "{wake} what's the title of this track",
    ),
    "none": (
        "{wake} set an alarm for seven", "{wake} what's the weather like", "{wake} turn on the lights",
        "{wake} play the radio", "{wake} play the next episode of my podcast", "{wake} tell me a joke",
        "{wake} what time is it", "{wake} add milk to my shopping list", "{wake} call mom",
        "{wake} set a timer for ten minutes", "{wake} read my emails", "{wake} what's on my calendar",
    ),
}
