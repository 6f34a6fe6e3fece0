"""Read a free-text music description into a :class:`Style` (tempo, key, mode, instruments).

Any text works: a GPT or LLaVA paragraph, a few keywords, empty, emoji, Japanese.
The rules are the small tables below, matched as whole words (English, plus a
few Japanese words), after NFKC normalisation (so full-width ``９０ＢＰＭ`` reads):

1. Tempo: a number ("90 BPM", "90bpm", "80-90 bpm", "tempo 90", "tempo 80-90", "bpm: 90", '"tempo": 90', "テンポ90"),
   else the mean of the TEMPO_WORDS found, else of the MOOD_TEMPO_WORDS (sad is slow), else the genre's tempo.
2. Key and mode: "in D minor", "E♭ major", "F# dorian", "イ短調", "嬰ヘ長調", "Gマイナー"; else the MODE_WORDS
   with most votes ("melancholic" -> minor, "mysterious" -> dorian); else the
   genre's mode.  No key named: C for major-like modes, A/D/E for the others.
3. Genre: GENRE_WORDS (weight 3) and GENRE_HINTS (weight 1) vote; no vote ->
   "calm" when slow, else "pop".  The genre gives default instruments, drum
   kit, accompaniment pattern and reverb (GENRES).
4. Instruments: INSTRUMENTS maps words to General MIDI programs (0-based) with
   the roles they can play; mentioned ones fill melody, harmony, bass in order
   of appearance, the genre fills the rest.
5. Drums: "no drums"/"without percussion" -> none; "drums", "beat"... -> yes;
   else the genre decides (energetic pop/orchestral/folk get drums, calm and
   ambient never).
6. Negation: the words after "no", "not", "without", "never", "nor", "minus", "avoid", "except" or
   "instead of", up to the end of their clause (a comma, "and", "but", "with", "just", "only"...), and
   those before なし, 無し, 抜き or 不要 since their clause began (ドラムなし), do
   not count for any rule above: "not sad" votes for no mode, "no jazz" for no genre.  An instrument
   said no to (or its family: "no brass" is no horn either, NEGATED_FAMILIES) is played by nobody; where
   the genre would have given it a part, the first of SUBSTITUTES for that part that is not said no to
   plays it ("a soft lullaby, no piano": flute and strings instead of the calm genre's piano); a bass said
   no to leaves the bass line to the harmony instrument's low register.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MODES = ("major", "minor", "dorian", "mixolydian", "phrygian", "lydian")

#: genre -> defaults: tempo, mode, melody/harmony/bass programs (bass None = the harmony
#: instrument's low register), drums (None = only when energetic), GM drum kit,
#: accompaniment ("comp"), bass pattern, drum groove, swing 0..1, reverb wet 0..1
GENRES: dict[str, dict] = {
    "calm":       dict(tempo=70, mode="major", melody=0, harmony=0, bass=None, drums=False, kit=0,
                       comp="arp", bassline="sustain", groove="pop", swing=0.0, reverb=0.28),
    "ambient":    dict(tempo=64, mode="lydian", melody=0, harmony=89, bass=None, drums=False, kit=0,
                       comp="pad", bassline="sustain", groove="pop", swing=0.0, reverb=0.45),
    "lofi":       dict(tempo=80, mode="dorian", melody=0, harmony=4, bass=33, drums=True, kit=8,
                       comp="stabs", bassline="lofi", groove="lofi", swing=0.35, reverb=0.2),
    "jazz":       dict(tempo=126, mode="major", melody=65, harmony=0, bass=32, drums=True, kit=40,
                       comp="jazz", bassline="walking", groove="jazz", swing=0.6, reverb=0.16),
    "rock":       dict(tempo=136, mode="minor", melody=29, harmony=30, bass=34, drums=True, kit=16,
                       comp="power", bassline="eighths", groove="rock", swing=0.0, reverb=0.1),
    "orchestral": dict(tempo=96, mode="minor", melody=60, harmony=48, bass=43, drums=None, kit=48,
                       comp="ostinato", bassline="root_fifth", groove="epic", swing=0.0, reverb=0.3),
    "electronic": dict(tempo=124, mode="minor", melody=81, harmony=89, bass=38, drums=True, kit=25,
                       comp="pad", bassline="offbeat", groove="electronic", swing=0.0, reverb=0.2),
    "folk":       dict(tempo=100, mode="major", melody=73, harmony=25, bass=32, drums=None, kit=0,
                       comp="strum", bassline="root_fifth", groove="folk", swing=0.0, reverb=0.15),
    "pop":        dict(tempo=110, mode="major", melody=0, harmony=25, bass=33, drums=None, kit=0,
                       comp="strum", bassline="pop", groove="pop", swing=0.0, reverb=0.15),
}

GENRE_WORDS: dict[str, tuple[str, ...]] = {
    "ambient": ("ambient", "atmospheric", "drone", "ethereal", "dreamy", "meditative", "new age", "アンビエント"),
    "lofi": ("lo-fi", "lofi", "lo fi", "chillhop", "hip-hop", "hip hop", "boom bap", "lo-fi hip hop", "ローファイ",
             "ヒップホップ"),
    "jazz": ("jazz", "jazzy", "swing", "bossa", "bebop", "big band", "ジャズ"),
    "rock": ("rock", "metal", "punk", "grunge", "power chords", "ロック", "メタル", "パンク"),
    "orchestral": ("orchestral", "orchestra", "symphonic", "cinematic", "film score", "soundtrack", "epic",
                   "オーケストラ", "管弦楽", "交響"),
    "electronic": ("electronic", "synthwave", "edm", "techno", "chiptune", "8-bit", "trance", "house",
                   "dance", "dubstep", "electro", "cyberpunk", "エレクトロ", "テクノ", "シンセウェイヴ"),
    "folk": ("folk", "celtic", "pastoral", "country", "acoustic", "bluegrass", "フォーク", "民謡"),
    "pop": ("pop", "j-pop", "anime opening", "ポップ"),
    "calm": ("lullaby", "solo piano", "ballad", "nocturne", "子守唄", "バラード"),
}
#: softer evidence (also the manga categories a describer may mention)
GENRE_HINTS: dict[str, tuple[str, ...]] = {
    "orchestral": ("action", "battle", "fight", "heroic", "trailer", "drama", "dramatic", "war", "adventure"),
    "ambient": ("ambience", "horror", "eerie", "creepy", "haunting", "space", "rain", "mist", "floating"),
    "lofi": ("conversation", "dialogue", "slice of life", "everyday", "study", "cafe", "chill", "nostalgic"),
    "electronic": ("sci-fi", "futuristic", "robot", "neon", "cyber", "synth", "retro"),
    "pop": ("comedy", "humor", "funny", "upbeat", "bright", "cheerful"),
    "calm": ("romance", "romantic", "tender", "peaceful", "gentle", "calm", "soft"),
    "jazz": ("noir", "detective", "bar", "smoky", "saxophone", "sax"),
}

TEMPO_WORDS: dict[str, float] = {
    "very slow": 52, "slow": 66, "slowly": 66, "calm": 70, "gentle": 72, "peaceful": 68, "serene": 66,
    "tranquil": 66, "relaxed": 78, "relaxing": 78, "laid-back": 80, "mellow": 76, "lazy": 72,
    "moderate": 100, "medium": 100, "mid-tempo": 100, "steady": 104, "walking": 96,
    "upbeat": 126, "lively": 128, "bouncy": 122, "playful": 116, "driving": 138, "energetic": 140,
    "fast": 150, "quick": 144, "rapid": 156, "intense": 148, "action": 150, "frantic": 172,
    "furious": 170, "racing": 168, "battle": 150, "fight": 150, "chase": 160, "chaotic": 165, "hectic": 165, "explosive": 160,
    "ゆっくり": 66, "静か": 68, "穏やか": 72, "速い": 150, "激しい": 150,
}
#: moods that say the style where no other word does: sorrow is calm, gloom ambient (a "sad piano" was 110 BPM pop,
#: the default); "a sad battle" stays a battle, "sad punk" punk
MOOD_GENRES: dict[str, tuple[str, ...]] = {
    "calm": ("sad", "sadness", "melancholic", "melancholy", "mournful", "sorrowful", "tragic", "somber", "sombre",
             "lonely", "grief", "grieving", "wistful", "悲しい", "切ない", "寂しい"),
    "ambient": ("gloomy", "bleak", "暗い"),
}
#: and their tempo, where nothing else says how fast or what style ("sad but fast" is fast)
MOOD_TEMPO_WORDS: dict[str, float] = {
    "sad": 66, "sadness": 66, "melancholic": 64, "melancholy": 64, "mournful": 58, "sorrowful": 60, "tragic": 62,
    "somber": 64, "sombre": 64, "gloomy": 66, "lonely": 66, "grief": 58, "grieving": 58, "wistful": 68,
    "悲しい": 64, "切ない": 66, "寂しい": 66,
}

ENERGY_WORDS: dict[str, float] = {
    "soft": -0.15, "gentle": -0.15, "quiet": -0.15, "delicate": -0.15, "calm": -0.1, "peaceful": -0.1,
    "sparse": -0.1, "minimal": -0.1, "intense": 0.2, "powerful": 0.2, "epic": 0.15, "aggressive": 0.2,
    "heavy": 0.15, "loud": 0.15, "explosive": 0.2, "climactic": 0.2, "battle": 0.2, "triumphant": 0.1,
    "sad": -0.1, "melancholic": -0.1, "melancholy": -0.1, "mournful": -0.15, "sorrowful": -0.1, "lonely": -0.1,
    "gloomy": -0.1, "悲しい": -0.1,
}

MODE_WORDS: dict[str, tuple[str, ...]] = {
    "major": ("happy", "bright", "cheerful", "joyful", "uplifting", "playful", "triumphant", "hopeful",
              "sunny", "warm", "comedy", "comedic", "humor", "humorous", "funny", "lighthearted",
              "light-hearted", "heroic", "romantic", "sweet", "whimsical", "peaceful", "明るい", "楽しい"),
    "minor": ("sad", "dark", "melancholic", "melancholy", "tense", "sinister", "gloomy", "tragic",
              "somber", "sombre", "mournful", "sorrowful", "lonely", "suspense", "suspenseful", "grim",
              "anxious", "horror", "scary", "haunting", "bittersweet", "dramatic", "tension",
              "悲しい", "切ない", "暗い", "不穏"),
    "dorian": ("dorian", "modal", "mysterious", "enigmatic", "noir", "contemplative", "introspective"),
    "mixolydian": ("mixolydian", "bluesy", "blues", "groovy"),
    "phrygian": ("phrygian", "menacing", "ominous", "evil", "villain", "exotic", "threatening", "dread"),
    "lydian": ("lydian", "magical", "wonder", "floating", "fantasy", "celestial"),
}
_MODE_ALIASES = {"maj": "major", "ionian": "major", "min": "minor", "aeolian": "minor"}
_DEFAULT_TONIC = {"major": 0, "lydian": 5, "mixolydian": 7, "minor": 9, "dorian": 2, "phrygian": 4}

#: word -> (General MIDI program, roles it can take: m = melody, h = harmony, b = bass)
INSTRUMENTS: dict[str, tuple[int, str]] = {
    "piano": (0, "mh"), "grand piano": (0, "mh"), "ピアノ": (0, "mh"),
    "electric piano": (4, "mh"), "rhodes": (4, "mh"), "e-piano": (4, "mh"), "keys": (4, "h"),
    "harpsichord": (6, "mh"), "celesta": (8, "m"), "glockenspiel": (9, "m"), "music box": (10, "m"),
    "vibraphone": (11, "m"), "vibes": (11, "m"), "marimba": (12, "m"), "xylophone": (13, "m"),
    "bells": (14, "m"), "bell": (14, "m"), "chimes": (14, "m"), "organ": (19, "h"), "accordion": (21, "mh"),
    "acoustic guitar": (24, "mh"), "nylon guitar": (24, "mh"), "classical guitar": (24, "mh"),
    "guitar": (25, "mh"), "electric guitar": (27, "mh"), "distorted guitar": (30, "h"),
    "distortion guitar": (30, "h"), "heavy guitar": (30, "h"), "ギター": (25, "mh"),
    "upright bass": (32, "b"), "double bass": (32, "b"), "acoustic bass": (32, "b"),
    "bass": (33, "b"), "bassline": (33, "b"), "bass guitar": (33, "b"), "electric bass": (33, "b"),
    "synth bass": (38, "b"), "violin": (40, "m"), "fiddle": (40, "m"), "viola": (41, "m"),
    "cello": (42, "mb"), "contrabass": (43, "b"), "pizzicato": (45, "h"), "harp": (46, "mh"),
    "strings": (48, "h"), "string": (48, "h"), "string quartet": (48, "h"), "ストリングス": (48, "h"),
    "choir": (52, "h"), "chorus": (52, "h"), "voices": (52, "h"), "vocals": (52, "h"),
    "trumpet": (56, "m"), "trombone": (57, "m"), "tuba": (58, "b"), "horn": (60, "mh"),
    "french horn": (60, "mh"), "brass": (61, "mh"), "sax": (65, "m"), "saxophone": (65, "m"),
    "oboe": (68, "m"), "bassoon": (70, "mb"), "clarinet": (71, "m"), "piccolo": (72, "m"),
    "flute": (73, "m"), "recorder": (74, "m"), "pan flute": (75, "m"), "shakuhachi": (77, "m"),
    "whistle": (78, "m"), "ocarina": (79, "m"), "chiptune": (80, "m"), "8-bit": (80, "m"),
    "synth": (81, "m"), "synthesizer": (81, "m"), "synth lead": (81, "m"), "lead synth": (81, "m"),
    "pad": (89, "h"), "synth pad": (89, "h"), "sitar": (104, "m"), "shamisen": (106, "m"),
    "koto": (107, "mh"), "kalimba": (108, "m"),
    # instruments a describer names that General MIDI has, or has a near kin of (the font plays every program)
    "dulcimer": (15, "mh"), "hammered dulcimer": (15, "mh"), "harmonica": (22, "m"), "ukulele": (24, "mh"),
    "lute": (24, "mh"), "oud": (24, "mh"), "mandolin": (25, "mh"), "tremolo strings": (44, "h"),
    "timpani": (47, "b"), "english horn": (69, "m"), "tin whistle": (78, "m"), "banjo": (105, "mh"),
    "biwa": (106, "m"), "pipa": (106, "m"), "sanshin": (106, "m"), "guzheng": (107, "mh"), "zither": (107, "mh"),
    "bagpipe": (109, "m"), "erhu": (110, "m"), "hichiriki": (111, "m"),
    "shehnai": (111, "m"), "steel drum": (114, "m"), "steel pan": (114, "m"),
    "三味線": (106, "m"), "琴": (107, "mh"), "尺八": (77, "m"), "バイオリン": (40, "m"), "ヴァイオリン": (40, "m"),
    "チェロ": (42, "mb"), "フルート": (73, "m"), "ハープ": (46, "mh"), "オルゴール": (10, "m"),
    "シンセ": (81, "m"), "トランペット": (56, "m"), "サックス": (65, "m"), "オルガン": (19, "h"),
    "エレキギター": (27, "mh"), "アコースティックギター": (24, "mh"), "ウッドベース": (32, "b"), "ベース": (33, "b"),
    "弦楽器": (48, "h"), "弦楽": (48, "h"), "金管楽器": (61, "mh"), "金管": (61, "mh"), "ホルン": (60, "mh"),
    "クラリネット": (71, "m"), "オーボエ": (68, "m"), "マリンバ": (12, "m"), "ハーモニカ": (22, "m"),
}

#: a negation, and what ends the words it applies to (the end of the clause)
_NEGATION = re.compile(r"(?<![a-z0-9-])(?:no|not|without|never|nor|minus|avoid|avoiding|except|instead\s+of)"
                       r"(?![a-z0-9-])")  # not in a compound: "a no-nonsense rock riff" is rock
_CLAUSE_END = re.compile(r"[,;.:!?()\n/]|[\u2013\u2014]|(?<![a-z])(?:and|but|with|just|only|over|plus|rather|"
                         r"then|yet|or\s+else)(?![a-z])")
#: Japanese says no after the word: ドラムなし, ピアノ抜き, 弦楽器は不要 (the words since the clause began)
_JA_NEGATED = re.compile(r"([^、。,.;:!?\s と]{1,12}?)(?:なし|無し|抜き|は不要|不要)")
#: a word that names a family, said no to, also rules out its members (General MIDI programs)
_GUITARS, _PIANOS, _STRINGS = tuple(range(24, 32)), (0, 1, 2, 3), (40, 41, 42, 43, 44, 45, 48, 49, 50, 51)
_BRASS, _SYNTHS = tuple(range(56, 64)), (38, 39, *range(80, 96))
NEGATED_FAMILIES: dict[str, tuple[int, ...]] = {
    "brass": _BRASS, "horn": (60,), "strings": _STRINGS, "string": _STRINGS, "string quartet": _STRINGS,
    "guitar": _GUITARS, "synth": _SYNTHS, "synthesizer": _SYNTHS, "piano": _PIANOS, "grand piano": _PIANOS,
    "keys": (*_PIANOS, 4, 5), "choir": (52, 53, 54), "voices": (52, 53, 54), "vocals": (52, 53, 54),
    "bass": (32, 33, 34, 35, 36, 37, 38, 39, 43),
}
#: who plays a part the genre gave to an instrument the text said no to: the first not said no to
#: (a bass said no to is left to the harmony instrument's low register, as in the genres that have no bass player)
SUBSTITUTES = {"melody": (73, 46, 0, 40, 24, 11), "harmony": (48, 0, 46, 24, 89, 4)}

DRUM_WORDS = ("drums", "drum", "percussion", "beat", "drumbeat", "breakbeat", "taiko", "groove", "ドラム")
NO_DRUMS = re.compile(r"\b(?:no|without|zero|minus)\s+(?:\w+\s+)?(?:drums?|percussion|beats?)\b|\bdrumless\b")

MIN_BPM, MAX_BPM = 40.0, 220.0  # the tempi the arranger plays
#: a number whole, as written (``1200`` is not ``200``), of any length: one that cannot be a tempo is said
_NUMBER = r"(?<![\d.])(\d+(?:\.\d+)?)"
_TEMPO_NUMBER = re.compile(
    _NUMBER + r"(?:\s*(?:-|–|to)\s*(\d+(?:\.\d+)?))?\s*(?:bpm|beats\s*(?:per|a|/)\s*min)"
    r"|(?:tempo|bpm|テンポ)[\"']?\s*(?:of|is|at|around|about|:|=|~|≈|：)?\s*(?:around|about|~)?\s*(\d+(?:\.\d+)?)"
    r"(?:\s*(?:-|–|to)\s*(\d+(?:\.\d+)?))?",
    re.IGNORECASE)
#: a key's letter in either case, as people type ("in d minor", "bb major"); in lower case only after "in", "key" or
#: "of" (see _lower_case_key)
_KEY = re.compile(
    r"(?<![A-Za-z])([A-Ga-g])\s?(#|♯|b|♭|(?i:-?sharp|-?flat))?\s*((?i:major|minor|maj|min|dorian|"
    r"mixolydian|"
    r"phrygian|lydian|aeolian|ionian))(?![a-z])")
#: Japanese key names: ハ ニ ホ ヘ ト イ ロ are C D E F G A B, 嬰 sharp and 変 flat before them, 長調 major and 短調
#: minor after; and a Latin letter with a katakana mode word (Gマイナー, Ebメジャー)
_JA_KEY = re.compile(r"([嬰変])?([ハニホヘトイロ])(長調|短調)")
_JA_LETTERS = {"ハ": "C", "ニ": "D", "ホ": "E", "ヘ": "F", "ト": "G", "イ": "A", "ロ": "B"}
_KATAKANA_KEY = re.compile(r"(?<![A-Za-z])([A-G])\s?(#|♯|b|♭)?\s*(メジャー|マイナー)")
#: a key named by its letter alone ("in D", "key of Bb"), or as a chord symbol writes a minor one ("in F#m",
#: "key: Am", a JSON answer's "key": "Em")
_KEY_ONLY = re.compile(r"(?i:\bin\s+|key\s+of\s+|key[\"']?\s*[:=]\s*[\"']?)([A-G])(#|♯|b|♭)?(m)?(?![A-Za-z#♯♭])")


@dataclass
class Style:
    """What the composer needs to know; every field has a sensible value."""

    tempo_bpm: float
    tonic: int  # pitch class 0..11
    mode: str
    genre: str
    energy: float  # 0 calm .. 1 frantic
    melody: int  # General MIDI programs (0-based)
    harmony: int
    bass: int
    drums: bool
    kit: int  # GM drum kit (bank 128 program)
    comp: str
    bassline: str
    groove: str
    swing: float
    reverb: float
    words: list[str] = field(default_factory=list)  # the table words that decided it
    notes: list[str] = field(default_factory=list)  # what the text asked that is played otherwise, in words

    @property
    def key_name(self) -> str:
        return f"{NOTE_NAMES[self.tonic]} {self.mode}"


def _pattern(words) -> re.Pattern:
    """Whole-word (ASCII, optional plural) or substring (other scripts) matching, longest first."""
    parts = []
    for w in sorted(words, key=len, reverse=True):
        if w.isascii():
            parts.append(r"(?<![a-z0-9])" + re.escape(w) + r"(?:s|es)?(?![a-z0-9])")
        else:
            parts.append(re.escape(w))
    return re.compile("|".join(parts))


def _table_pattern(table: dict) -> tuple[re.Pattern, dict[str, str]]:
    """A pattern over every word of a {name: words} table, and word -> name."""
    owner = {w: name for name, words in table.items() for w in words}
    return _pattern(owner), owner


_P_TEMPO = _pattern(TEMPO_WORDS)
_P_ENERGY = _pattern(ENERGY_WORDS)
_P_INSTR = _pattern(INSTRUMENTS)
_P_DRUMS = _pattern(DRUM_WORDS)
_P_MODE, _MODE_OF = _table_pattern(MODE_WORDS)
_P_GENRE, _GENRE_OF = _table_pattern(GENRE_WORDS)
_P_HINT, _HINT_OF = _table_pattern(GENRE_HINTS)
_P_MOOD, _MOOD_OF = _table_pattern(MOOD_GENRES)


def _base(match: str, table) -> str:
    """The table word a (possibly plural) match stands for."""
    if match in table:
        return match
    for cut in (2, 1):
        if match[:-cut] in table:
            return match[:-cut]
    return match


def _find(pattern: re.Pattern, text: str, table) -> list[tuple[int, str]]:
    return [(m.start(), _base(m.group(0), table)) for m in pattern.finditer(text)]


def _tempo(text: str) -> tuple[float | None, list[str]]:
    """The first tempo number of ``text`` that can be one (20-400 BPM), brought into the 40-220 BPM the
    composer plays, and what the user should be told: a number it changed or could not read as a tempo."""
    notes = []
    for m in _TEMPO_NUMBER.finditer(text):
        said = [g for g in m.groups() if g]
        value = sum(float(g) for g in said) / len(said)
        if not 20 <= value <= 400:
            notes.append(f"{'-'.join(said)} BPM was not read as a tempo (20 to 400 BPM are)")
            continue
        played = float(min(MAX_BPM, max(MIN_BPM, value)))
        if played != value:
            notes.append(f"{value:g} BPM is {'faster' if value > played else 'slower'} than the builtin composer "
                         f"plays: played at {played:g} BPM")
        return played, notes
    return None, notes


#: a key's name on its own (a chat model's "key" field): its letter in either case, then its accidental
_KEY_NAME = re.compile(r"\s*([A-Ga-g])(?![A-Za-z]{2})\s?(#|♯|♭|b(?![a-z])|-?\s?sharp|-?\s?flat)?", re.IGNORECASE)


def key_tonic(text: str) -> str | None:
    """The tonic of a key's name, as the music's keys are written ("C sharp minor", "C Sharp Minor", "c# minor" ->
    "C#"; "B flat major", "Bb" -> "Bb"; "E-flat" -> "Eb"; "home key D minor" -> "D"); None when it names none."""
    m = _KEY_NAME.match(text or "")
    if not m:  # words before it ("home key D minor"): a key named in the text, as a description's is found
        tonic, _ = _key(text or "")
        return NOTE_NAMES[tonic] if tonic is not None else None
    return NOTE_NAMES[_pitch_class(m.group(1).upper(), m.group(2))]


def _pitch_class(letter: str, accidental: str | None) -> int:
    """0-11 of a note's letter (upper case) and its accidental ("#", "♭", "b", "sharp", "-flat"...; None)."""
    pc = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}[letter]
    acc = (accidental or "").lower()
    pc += 1 if acc in ("#", "♯") or acc.endswith("sharp") else -1 if acc in ("b", "♭") or acc.endswith("flat") else 0
    return pc % 12


def _lower_case_key(text: str, m: re.Match) -> bool:
    """Whether a key written with its letter in lower case is one: after "in", "key" or "of" ("piano in d minor",
    "key of bb major"; not "vitamin d major"), and "a" only where the key's words end the phrase ("in a minor."; not
    "in a major city", "in a major key", which name no tonic)."""
    if not re.search(r"\b(?:in|key|of)\s+$", text[:m.start()], re.IGNORECASE):
        return False
    return m.group(1) != "a" or not re.match(r"\s*[A-Za-z]", text[m.end():])


def _key(text: str) -> tuple[int | None, str | None]:
    m = next((k for k in _KEY.finditer(text) if k.group(1).isupper() or _lower_case_key(text, k)), None)
    ja, kana = _JA_KEY.search(text), _KATAKANA_KEY.search(text)
    if m:
        letter, acc, mode = m.group(1).upper(), m.group(2), m.group(3)
    elif ja:
        letter, acc = _JA_LETTERS[ja.group(2)], {"嬰": "#", "変": "b"}.get(ja.group(1) or "", "")
        mode = "major" if ja.group(3) == "長調" else "minor"
    elif kana:
        letter, acc, mode = kana.group(1), kana.group(2), "major" if kana.group(3) == "メジャー" else "minor"
    else:
        m = _KEY_ONLY.search(text)
        if not m:
            return None, None
        letter, acc, mode = m.group(1), m.group(2), "minor" if m.group(3) else None
    pc = _pitch_class(letter, acc)
    if mode:
        mode = mode.lower()
        mode = _MODE_ALIASES.get(mode, mode)
    return pc, mode


def negated_spans(low: str) -> list[tuple[int, int]]:
    """Where the words said no to lie in ``low`` (lower-case text): from each negation to the end of its clause."""
    spans = []
    for m in _NEGATION.finditer(low):
        end = _CLAUSE_END.search(low, m.end())
        stop = end.start() if end else len(low)
        spans.append((m.end(), min(stop, m.end() + 60)))
    spans += [m.span(1) for m in _JA_NEGATED.finditer(low)]
    return spans


def _kept(found: list[tuple[int, str]], spans: list[tuple[int, int]]) -> list[tuple[int, str]]:
    return [(pos, w) for pos, w in found if not any(a <= pos < b for a, b in spans)]


def _said_no(found: list[tuple[int, str]], spans: list[tuple[int, int]]) -> list[str]:
    return [w for pos, w in found if any(a <= pos < b for a, b in spans)]


def _vote(found: list[tuple[int, str]], owner: dict[str, str], weight: float, votes: dict, first: dict):
    for pos, word in found:
        name = owner[word]
        votes[name] = votes.get(name, 0.0) + weight
        first[name] = min(first.get(name, pos), pos)


def parse_style(text: str) -> Style:
    """Turn any text into a Style.  Never raises; unknown words are ignored."""
    text = unicodedata.normalize("NFKC", str(text or ""))[:20000]
    low = text.lower()
    words: list[str] = []

    spans = negated_spans(low)
    votes: dict[str, float] = {}
    first: dict[str, int] = {}
    genre_found = _kept(_find(_P_GENRE, low, _GENRE_OF), spans)
    hint_found = _kept(_find(_P_HINT, low, _HINT_OF), spans)
    _vote(genre_found, _GENRE_OF, 3.0, votes, first)
    _vote(hint_found, _HINT_OF, 1.0, votes, first)

    tempo_found = _kept(_find(_P_TEMPO, low, TEMPO_WORDS), spans)
    tempo, notes = _tempo(text)
    if tempo is not None:
        words.append(f"{tempo:g} bpm")
    if tempo is None and tempo_found:
        tempo = sum(TEMPO_WORDS[w] for _, w in tempo_found) / len(tempo_found)
    mood_found = [] if votes else _kept(_find(_P_MOOD, low, _MOOD_OF), spans)  # no other word says the style
    _vote(mood_found, _MOOD_OF, 1.0, votes, first)
    if tempo is None and mood_found:
        moods = [w for _, w in mood_found if w in MOOD_TEMPO_WORDS]
        tempo = sum(MOOD_TEMPO_WORDS[w] for w in moods) / len(moods) if moods else None

    if votes:
        genre = max(votes, key=lambda g: (votes[g], -first[g]))
    else:
        genre = "calm" if tempo is not None and tempo < 85 else "pop"
    preset = GENRES[genre]
    if tempo is None:
        tempo = float(preset["tempo"])
    tempo = float(round(tempo, 2))

    energy_found = _kept(_find(_P_ENERGY, low, ENERGY_WORDS), spans)
    energy = (tempo - 55.0) / 115.0 + sum(ENERGY_WORDS[w] for _, w in energy_found)
    energy = float(min(1.0, max(0.0, energy)))

    tonic, mode = _key(text)
    if tonic is not None:
        words.append(f"{NOTE_NAMES[tonic]} {mode or ''}".strip())
    if mode is None:
        mode_votes: dict[str, float] = {}
        mode_first: dict[str, int] = {}
        mode_found = _kept(_find(_P_MODE, low, _MODE_OF), spans)
        _vote(mode_found, _MODE_OF, 1.0, mode_votes, mode_first)
        for m in re.finditer(r"(?<![a-z])(major|minor)(?![a-z])", low):
            if any(a <= m.start() < b for a, b in spans):
                continue
            mode_votes[m.group(1)] = mode_votes.get(m.group(1), 0.0) + 3.0
            mode_first.setdefault(m.group(1), m.start())
        words += [w for _, w in mode_found]
        mode = max(mode_votes, key=lambda k: (mode_votes[k], -mode_first[k])) if mode_votes else preset["mode"]
    if tonic is None:
        tonic = _DEFAULT_TONIC[mode]

    instruments = _find(_P_INSTR, low, INSTRUMENTS)
    refused = {p for w in _said_no(instruments, spans) for p in NEGATED_FAMILIES.get(w, (INSTRUMENTS[w][0],))}
    instruments = [(pos, w) for pos, w in _kept(instruments, spans) if INSTRUMENTS[w][0] not in refused]
    carrying = {INSTRUMENTS[_base(m.group(0), INSTRUMENTS)][0] for m in _P_INSTR.finditer(low)
                if _CARRIES_THE_TUNE.match(low, m.end())}
    melody, harmony, bass = _assign_instruments(instruments, preset, refused, carrying)

    drums = preset["drums"]
    if drums is None:
        drums = energy >= 0.55
    tempo_spans = [m.span() for m in _TEMPO_NUMBER.finditer(low)]  # "70 beats per minute" is a tempo, not a beat
    drum_words = [(pos, w) for pos, w in _find(_P_DRUMS, low, DRUM_WORDS) if not any(a <= pos < b for a, b in
                                                                                     tempo_spans)]
    asked = _kept(drum_words, spans)
    if asked:
        drums = True
    refused_drums = NO_DRUMS.search(low)
    if refused_drums or _said_no(drum_words, spans):
        drums = False

    words += [w for _, w in genre_found + hint_found + tempo_found + mood_found + energy_found]
    words += [w for _, w in instruments]
    # the drums asked for or refused are words played from too ("drums" alone was "no music words recognised; used
    # the default style", and then had drums)
    words += [w for _, w in asked] + ([refused_drums.group(0)] if refused_drums else [])
    return Style(
        tempo_bpm=tempo, tonic=tonic, mode=mode, genre=genre, energy=energy,
        melody=melody, harmony=harmony, bass=bass, drums=bool(drums), kit=preset["kit"],
        comp=preset["comp"], bassline=preset["bassline"], groove=preset["groove"],
        swing=preset["swing"], reverb=preset["reverb"], words=sorted(set(words)), notes=notes,
    )


#: what, said right after an instrument, gives it the tune: "piano theme", "guitar melody", "flute lead", "violin solo"
_CARRIES_THE_TUNE = re.compile(r"\s+(theme|melody|melodies|lead|solo)(?![a-z])")


def _assign_instruments(found: list[tuple[int, str]], preset: dict, refused: set[int] = frozenset(),
                        carrying: set[int] = frozenset()) -> tuple[int, int, int]:
    """Mentioned instruments fill melody, harmony, bass in order of appearance; the genre fills the rest, with a
    :data:`SUBSTITUTES` player where it would give a part to an instrument in ``refused``.  One said to carry the
    tune (``carrying``: "piano theme") plays the melody, whatever else is named ("piano theme, pizzicato strings,
    clarinet and marimba": a chapter's score lost its shared theme to the clarinet)."""
    preset = {**preset, **{part: _substitute(part, preset[part], refused) for part in ("melody", "harmony")}}
    if preset["bass"] in refused:
        preset["bass"] = None
    mentioned: list[tuple[int, str]] = []
    for _, word in found:
        prog, roles = INSTRUMENTS[word]
        if all(p != prog for p, _ in mentioned):
            mentioned.append((prog, roles))
    # the melody: the first instrument named that plays melodies only (a flute, a violin: "piano, violin and cello",
    # "harp, piano and flute" dropped it, a piano or harp taking the melody), else the first that plays one
    melody = next((p for p, r in mentioned if p in carrying and "m" in r), None)
    if melody is None:
        melody = next((p for p, r in mentioned if r == "m"), None)
    if melody is None:
        melody = next((p for p, r in mentioned if "m" in r), None)
    if melody is None:
        melody = next((p for p, r in mentioned if "h" in r), None)
    harmony = next((p for p, r in mentioned if "h" in r and p != melody), None)
    lead = next((p for p, r in mentioned if r == "m" and p != melody), None)
    if harmony is None and lead is not None:  # two melody instruments: the second plays the harmony part ("flute
        harmony = lead  # and violin": the violin was not played)
    if harmony is None:
        # a calm piano/guitar/harp named alone plays its own chords
        solo = melody is not None and dict(mentioned)[melody] == "mh" and preset["comp"] == "arp"
        harmony = melody if solo else preset["harmony"]
    bass = next((p for p, r in mentioned if "b" in r and p not in (melody,)), None)
    if bass is None and preset["bass"] is None:  # a genre without a bass player: a third instrument named plays
        # the bass line in its low register ("a brass theme, soft piano and warm strings": low strings), else the
        # harmony instrument does
        bass = next((p for p, r in mentioned if "h" in r and p not in (melody, harmony)), None)
    if bass is None:
        bass = preset["bass"] if preset["bass"] is not None else harmony
    if melody is None:
        melody = preset["melody"]
    return melody, harmony, harmony if bass in refused else bass


def _substitute(part: str, program: int, refused: set[int]) -> int:
    """``program``, or the first of :data:`SUBSTITUTES` for ``part`` not in ``refused`` when it is."""
    if program not in refused:
        return program
    return next((p for p in SUBSTITUTES[part] if p not in refused), program)
