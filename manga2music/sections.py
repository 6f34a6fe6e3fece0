"""Finding sections and their pages: folders, images, comic archives (.cbz/.zip, .cbr/.rar, .cb7/.7z, .cbt/.tar),
PDFs and EPUB books (pages in the book's reading order, :mod:`.epub`).

A *section* is a folder (or an archive folder, or a PDF) that directly holds
pages; it gets one track.  Its name is its path relative to the input root, or
the input's own name when pages sit directly in it.  Pages sort naturally
(``page2`` before ``page10``).  Archives are never extracted among the user's files: zips
and tars are read in place, RAR, 7-Zip and compressed tars through a private temporary tar
(:mod:`.other_archives`).
"""

from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import re
import threading
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Callable, Iterable, Iterator

from natsort import natsort_keygen, ns

from .errors import ArchiveError, InputError, Manga2MusicError, PageError
from .files import LOCK_NAME, damaged_data_errors, is_regular_file, read_regular_file, read_zip_entry, readable
from .wording import first_few

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jfif", ".jpe", ".png", ".webp", ".avif", ".gif", ".bmp", ".tif", ".tiff",
                    ".jp2", ".j2k",  # JPEG 2000: archive.org's comic scans
                    ".tga", ".pcx", ".ppm", ".pgm", ".pbm", ".pnm",  # older tools' and scanners' images
                    ".psd"}  # Photoshop: the merged image its files carry (a webtoon artist's working file)
#: page images Pillow has no decoder for (iPhone photos, JPEG XL, painting programs' files): taken as pages all the
#: same, so that each is a skipped page that says what to do, not a page left out of its chapter without a word
UNREADABLE_IMAGE_TYPES = {".heic": "HEIC", ".heif": "HEIF", ".jxl": "JPEG XL", ".kra": "Krita",
                          ".clip": "Clip Studio Paint", ".xcf": "GIMP", ".mdp": "FireAlpaca/MediBang"}
#: comic archives: zips (many a .cbr is one), and RAR, 7-Zip and tar archives (read by :mod:`.other_archives`)
ARCHIVE_EXTENSIONS = {".cbz", ".zip", ".cbr", ".rar", ".cb7", ".7z", ".cbt", ".tar"}
#: the same in words, each comic name beside the archive name it stands for
ARCHIVE_NAMES = ".cbz/.zip, .cbr/.rar, .cb7/.7z, .cbt/.tar (.tar.gz, .tgz...)"
#: what the first bytes of an archive that is not a zip say it is
_OTHER_ARCHIVES = ((b"Rar!\x1a\x07", "RAR"), (b"7z\xbc\xaf\x27\x1c", "7-Zip"),
                   # a tar compressed as a whole (.cbt from a tool that compresses, a .tar.gz renamed): read as RAR
                   # and 7-Zip are, by bsdtar
                   (b"\x1f\x8b", "gzip-compressed tar"), (b"BZh", "bzip2-compressed tar"),
                   (b"\xfd7zXZ\x00", "xz-compressed tar"), (b"\x28\xb5\x2f\xfd", "zstd-compressed tar"))
#: a tar compressed as a whole, named as such (``Ch 2.tar.gz``, ``Ch 3.tgz``): a ``.tar`` (see :func:`source_suffix`)
COMPRESSED_TAR_ENDINGS = (".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst", ".tgz", ".tbz2", ".tbz", ".txz", ".tzst")
PDF_EXTENSIONS = {".pdf"}
BOOK_EXTENSIONS = {".epub"}  # a zip whose pages are read in the book's own order (see :mod:`.epub`)
#: every kind of file that holds pages of its own (besides an image): what a folder is searched for
SOURCE_EXTENSIONS = ARCHIVE_EXTENSIONS | PDF_EXTENSIONS | BOOK_EXTENSIONS
#: Kindle books: a format of its own (usually with DRM), not read; named with what to do, not passed over
KINDLE_EXTENSIONS = {".mobi", ".azw", ".azw3", ".kfx"}
KINDLE_LINE = "a Kindle book, which manga2music cannot read; convert it to EPUB or CBZ first (Calibre does, for a " \
    "book without DRM)"
#: system files and folders that hold no page of the user's: Windows' and macOS's, a drive's recycle bin (Windows'
#: $RECYCLE.BIN), what fsck recovered (lost+found) and Windows' System Volume Information, and a NAS
#: box's thumbnails, recycle bins and snapshots (Synology's @eaDir, #recycle and #snapshot, QNAP's @Recycle: Komga
#: and Kavita skip them)
IGNORED_NAMES = {"thumbs.db", "desktop.ini", ".ds_store", "__macosx", "@eadir", "#recycle", "@recycle", "#snapshot",
                 "$recycle.bin", "lost+found", "system volume information"}  # (not XP's RECYCLER: a title too)

#: at most this many pages at a comic archive's root beside its one chapter folder are that chapter's front and back
#: matter (a cover, credits, a recruitment page), read with it
MATTER_PAGES = 3
#: refuse archives whose pages add up to more than this, uncompressed (zip bombs)
MAX_ARCHIVE_BYTES = 2 * 1024**3
#: ... and past this many times its own size: pages (JPEG, PNG, WebP) barely compress, so a real archive unpacks to
#: about its size on disk (a stored CBZ to exactly it); a zip bomb to thousands of times it
BOMB_RATIO = 20
#: refuse one page bigger than this (bytes), from any source
MAX_PAGE_BYTES = 200 * 1024**2
#: PDF pages are rendered at this many pixels on the long side
PDF_RENDER_LONG_SIDE = 1600

#: numbers written in kanji: 〇 to 九 are digits, and 十 百 千 count what comes before them (二十 20, 百二 102, 十一
#: 11), 万 the ten thousands before it (一万二千 12000); without those, the digits are read one by one (二〇二六
#: 2026).  The formal numerals of old and legal texts count too: 壱 弐 参 肆 伍 陸 漆 捌 玖 (1 to 9: 第伍話), 拾 佰 阡 仟
#: (10, 100, 1000) and 萬.
KANJI_NUMBER = re.compile("[〇零一二三四五六七八九十百千万萬壱弐参肆伍陸漆捌玖拾佰阡仟]+")
_KANJI_DIGIT = {**{c: k for k, c in enumerate("〇一二三四五六七八九")}, "零": 0,
                **{c: k for k, c in enumerate("壱弐参肆伍陸漆捌玖", start=1)}}
_KANJI_UNIT = {"十": 10, "百": 100, "千": 1000, "拾": 10, "佰": 100, "阡": 1000, "仟": 1000}
#: the parts of a work in two or three volumes: 上巻 中巻 下巻 (first, middle, last volume), 前編 中編 後編 (first,
#: middle, last part), read as 1, 2, 3 (their characters sort 上 下 中 and 中 前 後)
VOLUME_PART = re.compile("([上前中下後])(?=[巻編篇部])")
_PART_NUMBER = {"上": "1", "前": "1", "中": "2", "下": "3", "後": "3"}


def kanji_number(numeral: str) -> int:
    """The value of a run of kanji numerals (:data:`KANJI_NUMBER`): ``kanji_number("二十三") == 23``."""
    numeral = numeral.replace("萬", "万")
    if "万" in numeral:
        high, _, low = numeral.partition("万")
        return (kanji_number(high) if high else 1) * 10_000 + (kanji_number(low) if low else 0)
    if not any(c in _KANJI_UNIT for c in numeral):
        return int("".join(str(_KANJI_DIGIT[c]) for c in numeral))
    total = digits = 0
    for c in numeral:
        if c in _KANJI_UNIT:
            total += (digits or 1) * _KANJI_UNIT[c]
            digits = 0
        else:
            digits = digits * 10 + _KANJI_DIGIT[c]
    return total + digits


def _with_kanji_numbers_as_digits(name: str) -> str:
    if name.isascii():
        return name
    name = VOLUME_PART.sub(lambda m: _PART_NUMBER[m.group(1)], name)
    return KANJI_NUMBER.sub(lambda m: str(kanji_number(m.group())), name)


#: the point of a chapter number with a part after it (1.5): read as a mark after everything that may follow a whole
#: number ("Chapter 1_ Title", "第1話", "Ch 1 - Title"), so that 1 comes before 1.5, and 1.5 before 2
_DECIMAL_POINT = re.compile(r"(?<=\d)\.(?=\d)")


def _as_read(name: str) -> str:
    return _DECIMAL_POINT.sub("\uffff", _with_kanji_numbers_as_digits(name.lower()))


#: names as a reader orders them: numbers by value (written in kanji too: 第二話 before 第十話; 1.5 after 1), case
#: ignored, and a name's extension apart from it ("strip.png" before "strip2.jpg", which character order puts the
#: other way round)
natural_key = natsort_keygen(key=_as_read, alg=ns.PATH)
_natural = natural_key
#: a chapter's front cover, read before its numbered pages ("cover.jpg" sorted after "012.jpg"); not "back cover"
FRONT_COVER = re.compile(r"(front[ ._-]?)?cover(page)?([ ._-]?(front|\d+))?", re.IGNORECASE)


def page_order(name: str) -> tuple:
    """Reading order of a folder's pages: its front cover first, then the others in :data:`natural_key` order."""
    base = name.rsplit("/", 1)[-1]
    return (not FRONT_COVER.fullmatch(base.rsplit(".", 1)[0]), natural_key(name))


#: a chapter downloader's group prefix: Mihon/Tachiyomi name a chapter's folder "<scanlator>_<chapter>"
#: ("Asura Scans_Chapter 10"), whose chapters are read in their numbers' order whatever group made each
_GROUP_PREFIX = re.compile(r"[^_]{1,60}?_(?=(vol|ch|ep|第|#|\d))", re.IGNORECASE)
_CHAPTER_WORD = re.compile(r"(vol(ume)?|ch(ap(ter)?)?|ep(isode)?|part|page|p)?[ .]*\d*", re.IGNORECASE)
#: where a part of a work comes, before its numbers: a prologue first, volumes before the chapters not yet in one
#: (a series folder of "Vol. 01" ... beside the latest "Ch. 050"), epilogues and extras last
#: (in English, Japanese, Korean, Spanish, Portuguese, Italian, German, French)
_FIRST = re.compile(r"(prologue|prelude|preface|foreword|intro(duction)?|プロローグ|序章|序幕|序話|프롤로그|pr[oó]logo|"
                    r"prolog)(?![a-z])", re.IGNORECASE)
_VOLUME = re.compile(r"(vol(ume)?(?![a-z])|v\d|tome(?![a-z])|第[^話巻]{1,8}巻|\d+巻)", re.IGNORECASE)
_LAST = re.compile(r"(epilogue|afterword|postscript|extras?|omake|bonus|specials?|side[ -]?stor(y|ies)|エピローグ|終章|"
                   r"番外|おまけ|あとがき|特別編|에필로그|외전|ep[ií]logo|epilog)(?![a-z])", re.IGNORECASE)


def _is_group_name(prefix: str) -> bool:
    """Whether the part before a Mihon "_" names a scanlation group ("Asura Scans"), not a volume, season, arc or
    extra ("V1_Ch1", "Season 1_Episode 2", "第1巻_第1話", "Extra_01"), which say where the chapter comes."""
    return not (any(c.isdigit() for c in prefix) or _CHAPTER_WORD.fullmatch(prefix) or _FIRST.match(prefix)
                or _VOLUME.match(prefix) or _LAST.match(prefix) or _KANJI_DIGIT.keys() & set(prefix))


#: the word a chapter's name begins with before its number, whatever a downloader calls it ("Chapter 1", "Ch. 2",
#: "Ch 3", "c005", "Episode 6", "Ch #7", "第4話"): chapters named in several styles are read by their numbers
_BEFORE_NUMBER = re.compile(r"(chapter|chap|ch|c|episode|ep)\.?\s*#?\s*(?=\d)|第(?=[0-9"
                            + KANJI_NUMBER.pattern.strip("[]+") + "])",  # every kanji it reads (第壱話 came after
                            re.IGNORECASE)  # 第四話)
#: a chapter's number written as words ("Chapter One", "Episode Twelve", "Chapter Twenty-One"), read as its number
#: where the words are all the name holds or a separator follows ("Chapter One - Start"); not a title that starts with
#: one ("Chapter Ten Thousand Years" stays among the names)
_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
          "seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_NUMBER_WORDS = {word: n for n, word in enumerate(_UNITS)} | {word: 20 + 10 * k for k, word in enumerate(_TENS)}
_WORD_NUMBER = re.compile(r"(?:chapter|chap|ch|episode|ep)\.?\s*(?P<tens>" + "|".join(_TENS) + r")?(?:(?<=[a-z])[- ]?)?"
                          r"(?P<unit>" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r")?(?=\s*(?:$|[^\sa-z]))",
                          re.IGNORECASE)
#: a chapter named by the word alone ("Episode" beside "Episode 2", "Episode 3"): the first, saved without its number
_WORD_ALONE = re.compile(r"(chapter|chap|ch|episode|ep)\.?\s*", re.IGNORECASE)


def _part_order(part: str) -> tuple:
    group = _GROUP_PREFIX.match(part)
    if group and _is_group_name(group.group()[:-1]):
        part = part[group.end():]
    rank = 0 if _FIRST.match(part) else 1 if _VOLUME.match(part) else 3 if _LAST.match(part) else 2
    if rank == 2:
        if (worded := _WORD_NUMBER.match(part)) and (worded["tens"] or worded["unit"]) and not (
                worded["tens"] and worded["unit"] and _NUMBER_WORDS[worded["unit"].lower()] >= 10):
            number = sum(_NUMBER_WORDS[w.lower()] for w in (worded["tens"], worded["unit"]) if w)
            part = str(number) + part[worded.end():]
        elif _WORD_ALONE.fullmatch(part):
            part = "1"
        elif word := _BEFORE_NUMBER.match(part):
            part = part[word.end():]
    return rank, natural_key(part)


#: a scanlator's tag in brackets before a chapter's name ("[ATeam] Title - 011"), left out of its order
_BRACKET_TAG = re.compile(r"\[([^\[\]]{1,60})\]\s*")
#: where a series' title in front of each chapter's name may end ("Berserk v01 c001": "Berserk ")
_TITLE_END = re.compile(r"[\s_\-.:]+")


def _untagged(part: str) -> str:
    """A part of a section's name without a scanlator's bracketed tag before it (one with no digit: "[Vol.1]" says
    where a chapter comes)."""
    tag = _BRACKET_TAG.match(part)
    return part[tag.end():] if tag and _is_group_name(tag.group(1)) and tag.end() < len(part) else part


def _shared_title(parts: list[str]) -> str:
    """The words the names of most sibling sections begin with, up to a separator ("Berserk " of "Berserk Prologue",
    "Berserk v01 c001" and "Berserk c011", beside an "Extra" without it): the series' title, which says nothing of
    where each comes ("20th Century Boys ", "Extra Life " and "Mob Psycho 100 " too); "" for none.  A title ends
    before a word that numbers a chapter ("Chapter " of "Chapter One" and "Chapter 3" is no title)."""
    groups: dict[str, list[str]] = {}
    for part in parts:  # by the first word: the names that share a title
        groups.setdefault(part.split(" ", 1)[0].lower(), []).append(part)
    titled = max(groups.values(), key=len, default=[])
    if len(titled) < 2 or 2 * len(titled) < len(parts) or any(len(p.lower()) != len(p) for p in titled):
        return ""  # (a letter whose lower case is longer, "İ", would cut the title in the wrong place)
    prefix = os.path.commonprefix([p.lower() for p in titled])
    end = 0
    for separator in _TITLE_END.finditer(prefix):  # the title's words, up to one that numbers a chapter
        if _numbers_a_chapter(prefix[end:separator.start()]):
            break
        end = separator.end()
    return titled[0][:end] if all(len(p) > end for p in titled) else ""


def _numbers_a_chapter(word: str) -> bool:
    """Whether a word of a name is the word a chapter's number comes after: "Chapter", "Ch.", "Episode", "Vol",
    "v01", "c005" (a number alone, "100" of "Mob Psycho 100", may be part of a title)."""
    return bool(not word or _WORD_ALONE.fullmatch(word) or _BEFORE_NUMBER.match(word) or _VOLUME.match(word)
                or _CHAPTER_WORD.fullmatch(word) and any(c.isalpha() for c in word))


def section_order(name: str, title: str = "") -> tuple:
    """Reading order of section names: "Vol 1/Chapter 6" before "Vol 1/Chapter 14", a downloader's group prefix left
    out ("Flame_Chapter 2" before "Asura_Chapter 10", "[ATeam] Title - 011" after "[Zscans] Title - 009"), a prologue
    first, volumes before loose chapters, epilogues and extras last (the name itself breaks ties).  ``title``: what
    most of the last part's siblings' names begin with (:func:`reading_keys`), left out where it begins it."""
    parts = name.split("/")
    kept = [_untagged(part) for part in parts]
    if title and kept[-1][:len(title)].lower() == title.lower() and len(kept[-1]) > len(title):
        kept[-1] = kept[-1][len(title):]
    return [_part_order(part) for part in kept], [natural_key(part) for part in parts]


def reading_keys(names: Iterable[str]) -> dict[str, tuple]:
    """:func:`section_order` of each name, a series' title that most sibling sections' names begin with left out:
    "Berserk Prologue", "Berserk v01 c001", "Berserk c011", "Berserk Extra" are read in that order (they were read
    as names, "Berserk c011" first)."""
    names = list(dict.fromkeys(names))
    siblings: dict[str, list[str]] = {}
    for name in names:
        parent, _, last = name.rpartition("/")
        siblings.setdefault(parent, []).append(_untagged(last))
    titles = {parent: _shared_title(parts) for parent, parts in siblings.items()}
    return {name: section_order(name, titles[name.rpartition("/")[0]]) for name in names}


def _in_reading_order(sections: list[Section]) -> list[Section]:
    keys = reading_keys(s.name for s in sections)
    return sorted(sections, key=lambda s: keys[s.name])


def is_hidden(name: str) -> bool:
    """Hidden and system files: ``.DS_Store``, ``._page.jpg``, ``Thumbs.db``, ``__MACOSX``, a NAS box's ``@eaDir``."""
    return name.startswith(".") or name.lower() in IGNORED_NAMES


#: hidden folders that hold no reader's pages, whatever images are in them: a repository's, an image viewer's
#: thumbnails, a trash, a Mac's and an editor's own
SYSTEM_FOLDER = re.compile(r"\.(git|svn|hg|thumbnails|thumbs|cache|trash.*|trashes|appledouble|appledb|"
                           r"spotlight-v100|fseventsd|temporaryitems|documentrevisions-v100|venv|idea|vscode|"
                           r"ipynb_checkpoints|@__thumb|recycle|stversions|stfolder|syncthing.*|picasaoriginals|"
                           r"dtrash|snapshots?|zfs|streams|sync|dropbox.*|nomedia)", re.IGNORECASE)


def is_system_folder(name: str) -> bool:
    """A folder no page is in, said nothing of: ``__MACOSX``, ``@eaDir``, ``.git``, ``.thumbnails``..."""
    return name.lower() in IGNORED_NAMES or name.startswith("._") or bool(SYSTEM_FOLDER.fullmatch(name))


def _hidden_member(parts: tuple[str, ...]) -> bool:
    """An archive's member that is no page: a hidden or system file, or one in a system folder.  A folder whose
    name starts with a dot is read in an archive that holds no other page (``.hack Legend of the Twilight/001.png``:
    a real title; see :func:`_archive_sections`)."""
    return is_hidden(parts[-1]) or any(is_system_folder(p) for p in parts[:-1])


#: the names a browser or downloader gives an image it saved: Twitter/X's "page.jpg_large" ("_orig", "_small", a size)
SAVED_IMAGE_SUFFIX = re.compile(r"\.(jpe?g|png|webp|gif)_(large|orig|medium|small|thumb|\d+x\d+)", re.IGNORECASE)
#: a page or archive still being downloaded (Firefox's .part, Chrome's .crdownload, Safari's .download, aria2's
#: .aria2; Mihon/Tachiyomi's "Chapter 12.cbz_tmp")
UNFINISHED_DOWNLOAD = re.compile(r".+(\.[a-z0-9]{2,5})(\.(part|crdownload|download|aria2|partial)|_tmp)", re.IGNORECASE)
#: a chapter folder Mihon/Tachiyomi is still downloading into ("Group_Chapter 12_tmp", renamed once complete)
UNFINISHED_FOLDER = re.compile(r".+_tmp")


def is_image_name(name: str) -> bool:
    suffix = Path(name.rstrip()).suffix.lower()  # "004.png " (a trailing space): a page, left out unsaid
    return not is_hidden(name) and (suffix in IMAGE_EXTENSIONS or suffix in UNREADABLE_IMAGE_TYPES
                                    or bool(SAVED_IMAGE_SUFFIX.fullmatch(suffix)))


#: the first bytes of the image types a page saved without an extension is (a browser's "Save image" of a URL with
#: none, a scraper's): JPEG, PNG, GIF, WebP, TIFF, AVIF/HEIC (an ISO box "ftyp" at byte 4)
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")


def _holds_an_image(path: Path) -> bool:
    """Whether the first bytes of ``path`` (a file with no extension, or something after one) say it is an image:
    read as a page, or said, not left out of its chapter without a word."""
    try:
        with open(path, "rb") as f:
            return _starts_like_an_image(f.read(16))
    except OSError:
        return False


def _starts_like_an_image(head: bytes) -> bool:
    return head.startswith(_IMAGE_MAGIC) or head[:4] == b"RIFF" and head[8:12] == b"WEBP" or head[4:8] == b"ftyp"


def _is_image_member_without_extension(archive: Path, member: str) -> bool:
    """:func:`_holds_an_image` for a file packed in an archive (read through the archive's reader; a
    member that cannot be read is not a page)."""
    try:
        if _archive_kind(archive):  # RAR, 7-Zip, tar: unpacked once for the run, as its pages are when read
            return _starts_like_an_image(_read_archive_member(archive, member)[:16])
        zf = _open_zip(archive)
        info = zf.getinfo(member)
        if info.flag_bits & 0x1:  # encrypted: its pages fail in one line when read; this one is not sniffed
            return False
        try:
            with zf.open(info) as f:
                return _starts_like_an_image(f.read(16))
        except damaged_data_errors():  # kept as a page: reading it says, in a line, that it is damaged
            return True
    except (InputError, PageError, zipfile.BadZipFile, KeyError, OSError, RuntimeError, EOFError,
            NotImplementedError):
        return False


def source_suffix(name: str) -> str:
    """The extension that says what a file holding pages is: its last suffix (``.cbz``, ``.pdf``), or ``.tar`` for
    a tar compressed as a whole (``Ch 2.tar.gz``, ``.tgz``: its last suffix alone, ``.gz``, says nothing)."""
    lower = name.lower()
    return ".tar" if lower.endswith(COMPRESSED_TAR_ENDINGS) else Path(lower).suffix


def source_stem(name: str) -> str:
    """``name`` less :func:`source_suffix`'s extension (``Ch 2.tar.gz`` -> ``Ch 2``)."""
    lower = name.lower()
    ending = next((e for e in COMPRESSED_TAR_ENDINGS if lower.endswith(e)), None)
    return name[:-len(ending)] if ending else Path(name).stem


#: a page's name with something after its extension: wget's second copy "002.png.1", a saved URL "003.jpg?v=2"
_AFTER_AN_IMAGE_EXTENSION = re.compile(
    r".+\.(" + "|".join(sorted((re.escape(e[1:]) for e in IMAGE_EXTENSIONS), key=len, reverse=True))
    + r")[^a-z0-9].*", re.IGNORECASE)


def _misnamed_pictures(here: Path, files: list[str], taken: set[str]) -> list[str]:
    """Files of ``here`` named like a page with something after its extension whose bytes are a picture: left out,
    as their names are no page's (a wget copy may repeat a page), but said: they were left out without a word."""
    return [f for f in files if f not in taken and not is_hidden(f) and not is_image_name(f)
            and _AFTER_AN_IMAGE_EXTENSION.fullmatch(f) and not UNFINISHED_DOWNLOAD.fullmatch(f)
            and _holds_an_image(here / f)]


def _unfinished_downloads(files: list[str]) -> list[str]:
    """Pages a browser or downloader has not finished writing (``004.jpg.part``): said, not read and not passed over."""
    return [f for f in files if not is_hidden(f) and (found := UNFINISHED_DOWNLOAD.fullmatch(f))
            and (found.group(1).lower() in IMAGE_EXTENSIONS
                 or source_suffix(f[:found.end(1)]) in SOURCE_EXTENSIONS)]  # "Ch 2.tar.gz.part" too


@dataclass(frozen=True)
class Page:
    """One page of a section: where its bytes come from, and a name to show."""

    name: str  # file name inside the section, e.g. "003.png"; "page 3" for PDFs
    path: Path  # the file on disk (the image, the archive, or the PDF)
    member: str | None = None  # the entry inside an archive, as zipfile (or tarfile) names it (what reads it)
    member_shown: str | None = None  # ... and as its packer meant it (see member_name), when they differ
    pdf_index: int | None = None  # the page number inside a PDF (0-based)
    frame: int | None = None  # the page number inside a multi-page TIFF (0-based; None: a file of one page)
    #: an archive entry whose name a later entry has too: reading the name gives the later one (as unzip leaves it)
    shadowed: bool = False
    #: an image given by itself as a PATH: its section's source is this file, not the folder it lies in (see
    #: :func:`page_container`), so it never holds the names of its folder's files, nor they its
    alone: bool = False

    @property
    def source(self) -> str:
        """A string that locates the page for a human: a path, ``archive.cbz!entry`` or ``doc.pdf#3`` (UTF-8)."""
        if self.member is not None:
            return (f"{readable(self.path)}!{readable(self.member_shown or self.member)}"
                    + (f"#{self.frame + 1}" if self.frame is not None else ""))
        if self.pdf_index is not None:
            return f"{readable(self.path)}#{self.pdf_index + 1}"
        return readable(self.path) + (f"#{self.frame + 1}" if self.frame is not None else "")

    @property
    def index(self) -> int | None:
        """The page's place inside its file, for a PDF page or a page of a multi-page TIFF (0-based); else None."""
        return self.pdf_index if self.pdf_index is not None else self.frame

    def read_bytes(self) -> bytes:
        """The page's raw bytes (images and archive entries; PDF pages are rendered, see :func:`render_pdf_page`)."""
        if self.shadowed:
            raise PageError(f"{self.source}: the archive holds a later entry of the same name, which is read instead "
                            "(as unpacking it would leave it)")
        if self.member is not None:
            return _read_archive_member(self.path, self.member)
        if self.pdf_index is not None:
            raise PageError(f"{self.source}: a PDF page has no bytes of its own; it is rendered")
        return read_regular_file(self.path, MAX_PAGE_BYTES, what="page")


@dataclass
class Section:
    """A folder's worth of pages: one track."""

    name: str  # "ch01/part2" (always "/"-separated, valid UTF-8)
    pages: list[Page]
    origin: Path  # the folder, archive or PDF it came from
    root: Path = field(default=Path("."))  # the PATH the user gave
    error: str | None = None  # why this source cannot be read at all (a broken archive): the section fails alone
    given_name: str = ""  # its name before a clash with another PATH's section numbered it ("ch1" of "ch1-2")
    plain_name: str = ""  # its name before a clash named it by its folders ("ch1" of "b/ch1"; "": never)
    #: names earlier versions gave it: an output folder's files made under one of them keep it
    former_names: list[str] = field(default_factory=list)
    #: where it comes in reading order when its files keep another name ("Vol 1/Chapter 1" of the files ``run
    #: "S/Vol 1/Chapter 1"`` made as "Chapter 1"); "": its name
    read_as: str = ""

    @property
    def unreadable_file(self) -> str | None:
        """The archive, PDF or folder of a section that could not be read at all (no page, an error), as a record
        names a source; None for any other section."""
        if self.pages or not self.error:
            return None
        return self.container_path

    @property
    def container_path(self) -> str | None:
        """The folder, archive or PDF its pages come from, as an absolute path (where its failed entry says it was)."""
        return readable(os.path.realpath(self.origin)) if self.origin is not None else None

    @property
    def source(self) -> str | None:
        """Where its pages come from, as its records store it (see :func:`page_container`); None without pages."""
        if not self.pages:
            return None
        page = self.pages[0]
        member = readable(page.member) if page.member is not None else None  # as a record stores it
        return page_container(readable(os.path.realpath(page.path)), member, page.pdf_index, page.alone)


def page_container(path: str, member: str | None, pdf_index: int | None, alone: bool = False) -> str:
    """The folder, archive or PDF holding a page, from the page's resolved path (as a record stores it); the page
    itself for one given alone (``run ch/002.png`` is not ``run ch``: its files are its own).  A page in a folder
    inside an archive is held by that folder: ``Vol 02.cbz!Ch 003`` (a volume's chapters are sources of their own,
    or a chapter added to the volume would take another's files)."""
    if member is not None:
        folder = posixpath.dirname(member.replace("\\", "/"))
        return f"{path}!{folder}" if folder else path
    return path if pdf_index is not None or alone else os.path.dirname(path)


def container_path(source: str) -> str:
    """The file or folder on the disk that holds a :func:`page_container` source (the archive of
    ``Vol 02.cbz!Ch 003``)."""
    if os.path.exists(source):
        return source
    k = source.find("!")
    while k != -1:
        if os.path.isfile(source[:k]):
            return source[:k]
        k = source.find("!", k + 1)
    return source


# --- archives ------------------------------------------------------------------------------


def _safe_member_parts(member: str) -> tuple[str, ...] | None:
    """The folder parts of an archive entry, or None for entries we refuse (absolute, ``..``, a Windows drive).

    A colon elsewhere is part of a name (``Chapter 1: The Beginning/001.png``, as Linux and macOS tools name a
    folder); only a drive letter before it (``C:/x.png``, ``C:x.png``) makes the name lead out."""
    posix = PurePosixPath(member.replace("\\", "/"))
    if posix.is_absolute() or any(p in ("..", "") for p in posix.parts) or PureWindowsPath(member).drive:
        return None
    return posix.parts


_UTF8_FLAG = 0x800  # general purpose bit 11: the entry's name is UTF-8
_UNICODE_PATH_FIELD = 0x7075  # Info-ZIP's extra field holding a UTF-8 copy of a name stored in a local code page


def _is_japanese(text: str) -> bool:
    """Every non-ASCII character is Japanese script or punctuation, and there is kana or a kanji among them."""
    wide = [c for c in text if ord(c) > 0x7F]
    script = any(0x3040 <= ord(c) <= 0x30FF or 0x4E00 <= ord(c) <= 0x9FFF for c in wide)
    return script and all(0x3000 <= ord(c) <= 0x30FF or 0x4E00 <= ord(c) <= 0x9FFF or 0xFF00 <= ord(c) <= 0xFFEF
                          for c in wide)


def _unicode_path(info: zipfile.ZipInfo, raw: bytes) -> str | None:
    """The UTF-8 name in the entry's Info-ZIP Unicode Path field, if it has one made for this very name."""
    import struct

    extra, i = info.extra, 0
    while i + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, i)
        body = extra[i + 4:i + 4 + size]
        if tag == _UNICODE_PATH_FIELD and len(body) > 5 and body[0] == 1:
            if struct.unpack_from("<I", body, 1)[0] == zipfile.crc32(raw) & 0xFFFFFFFF:
                try:
                    return body[5:].decode("utf-8")
                except UnicodeDecodeError:
                    return None
        i += 4 + size
    return None


def member_name(info: zipfile.ZipInfo) -> str:
    """An archive entry's name as its packer meant it (NFC).  Python reads a name without the UTF-8 flag as
    code page 437, the zip standard's own, but most such names are UTF-8 (Info-ZIP on Linux, macOS) or, in
    Japanese archives, Shift-JIS (cp932, whose second bytes include the one of "\\").  In that order, after
    Info-ZIP's Unicode Path field: UTF-8, then cp932 when it reads as Japanese, else code page 437.  The stored
    bytes are taken from ``orig_filename``: Python 3.12 and later put the Unicode Path field's name in ``filename``."""
    import unicodedata

    name = info.filename
    if info.flag_bits & _UTF8_FLAG:
        return unicodedata.normalize("NFC", name)
    stored = info.orig_filename.encode("cp437")  # the name's bytes as stored (cp437 gives every byte back)
    if (unicode_path := _unicode_path(info, stored)) is not None:
        return unicodedata.normalize("NFC", unicode_path)
    raw = stored.split(b"\x00", 1)[0]  # cut at a NUL, as Python cuts ``filename``
    if name.isascii():
        return name
    try:
        return unicodedata.normalize("NFC", raw.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    try:
        japanese = raw.decode("cp932")
    except UnicodeDecodeError:
        return name
    return japanese if _is_japanese(japanese) else name


def _read_archive_member(archive: Path, member: str) -> bytes:
    if kind := _archive_kind(archive):
        from . import other_archives

        return other_archives.read_member(archive, kind, member, MAX_ARCHIVE_BYTES, MAX_PAGE_BYTES)  # size-checked
    try:
        zf = _open_zip(archive)
        info = zf.getinfo(member)
        if info.flag_bits & 0x1:  # encrypted: where every file is, the chapter fails in one line; one page among
            # plain ones is one page skipped (the whole chapter failed)
            if all(i.flag_bits & 0x1 for i in zf.infolist()  # its pages, not a plain ComicInfo.xml beside them
                   if not i.is_dir() and is_image_name(i.filename.replace("\\", "/").rsplit("/", 1)[-1])):
                raise ArchiveError(f"{readable(archive)}: password-protected; unpack it with its password and give "
                                   "the folder of pages")
            raise PageError(f"{readable(archive)}!{readable(member)}: this page is password-protected (the others "
                            "are not); unpack it with its password to read it")
        try:
            data = read_zip_entry(zf, info, MAX_PAGE_BYTES)
        except NotImplementedError:  # a compression method this Python's zip reader lacks
            return _read_unusual_zip_member(archive, member, info.compress_type, zf)
        if data is None:
            raise PageError(f"{archive}!{member}: {info.file_size / 1024**2:.2f} MB is more than the "
                            f"{MAX_PAGE_BYTES / 1024**2:g} MB page limit")
        return data
    except (zipfile.BadZipFile, KeyError, OSError, RuntimeError, EOFError) as exc:
        raise PageError(f"{archive}!{member}: cannot read ({exc})") from exc


#: zip compression methods that Python's zip reader (3.11-3.13) lacks, by number: what they are called.  bsdtar
#: (libarchive) reads all but Deflate64, which Windows' own zip writer uses for big files
_UNUSUAL_ZIP_METHODS = {9: "Deflate64", 93: "Zstandard", 95: "xz", 98: "PPMd"}
_DEFLATE64 = 9


def _read_unusual_zip_member(archive: Path, member: str, method: int, zf: zipfile.ZipFile) -> bytes:
    """A zip page packed with a method Python cannot unpack: read through bsdtar, as a RAR's pages are (the archive
    is unpacked once for all its pages), or a :class:`PageError` that names the method and says what to do (an
    :class:`ArchiveError`, one line for the chapter, when every page of the archive is packed so)."""
    from . import other_archives

    name = _UNUSUAL_ZIP_METHODS.get(method)
    how = f"{name} (zip method {method})" if name else f"zip method {method}"
    if method == _DEFLATE64 or name is None:
        why = ("which neither Python nor bsdtar can unpack; extract it with 7-Zip (or Windows) and give the folder, "
               "or zip its pages again")
    elif other_archives.bsdtar() is None:
        why = "which Python cannot unpack; " + other_archives.INSTALL_BSDTAR
    else:
        return other_archives.read_member(archive, "zip", member, MAX_ARCHIVE_BYTES, MAX_PAGE_BYTES)
    pages = [info for info in zf.infolist()  # the archive's pages, as _archive_sections finds them
             if (parts := _safe_member_parts(info.filename)) is not None and not _hidden_member(parts)
             and is_image_name(parts[-1])]
    if all(info.compress_type == method for info in pages):
        raise ArchiveError(f"{readable(archive)}: its pages are packed with {how}, {why}")
    raise PageError(f"{readable(archive)}!{readable(member)}: packed with {how}, {why}")


_open_zips = threading.local()


def _open_zip(archive: Path) -> zipfile.ZipFile:
    """The zip archive whose pages this thread reads, opened once while they are read one after another (and again
    if the file changes): opening it for each page read its whole table of entries each time, so time grew with
    the square of the pages (a 4000-entry omnibus: 56 s; 20000 entries: about 25 minutes).  One per thread (a
    ZipFile's position is its own), the one before closed."""
    stat = os.stat(archive)
    key = (os.path.realpath(archive), stat.st_mtime_ns, stat.st_size)
    held = getattr(_open_zips, "held", None)
    if held is not None and held[0] == key:
        return held[1]
    if held is not None:
        _open_zips.held = None
        held[1].close()
    zf = zipfile.ZipFile(archive)
    _open_zips.held = (key, zf)
    return zf


def _archive_kind(archive: Path) -> str | None:
    """"RAR", "7-Zip", "tar" or "gzip-compressed tar" (bzip2, xz, zstd) when the file's first bytes say so."""
    try:
        with open(archive, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return None
    if len(head) > 262 and head[257:262] == b"ustar":
        return "tar"
    if head == bytes(512) and _an_empty_tar(archive):  # a tar made of nothing: its end marker alone
        return "tar"
    return next((kind for magic, kind in _OTHER_ARCHIVES if head.startswith(magic)), None)


def _an_empty_tar(archive: Path) -> bool:
    """Whether ``archive`` is a tar with nothing in it: named as a tar, its end marker alone (zero blocks, 10240
    bytes at most).  A file of zeros under another name (a torrent's pre-allocated, not yet downloaded ``Ch 5.cbz``)
    or a bigger one is no empty chapter: it stays unreadable, and its chapter fails."""
    import tarfile

    if source_suffix(archive.name) not in (".tar", ".cbt"):
        return False
    try:
        if archive.stat().st_size % 512 or archive.stat().st_size > 10240:
            return False
        with tarfile.open(archive, mode="r:") as tar:
            return not tar.getmembers()
    except (OSError, tarfile.TarError):
        return False


def _archive_entries(archive: Path) -> list[tuple[str, str, int]]:
    """(the name its packer meant, the name that reads it, unpacked size) of each file in the archive."""
    if kind := _archive_kind(archive):  # RAR, 7-Zip or a tar, compressed or not: see other_archives
        import unicodedata

        from . import other_archives

        return [(unicodedata.normalize("NFC", m.name), m.name, m.size)  # a Mac's packer may store "ペ" as two
                for m in other_archives.list_members(archive, kind, MAX_ARCHIVE_BYTES)]
    try:
        with zipfile.ZipFile(archive) as zf:
            return [(member_name(info), info.filename, info.file_size) for info in zf.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        try:
            empty = archive.stat().st_size == 0
        except OSError:
            empty = False
        why = ("it is empty (0 bytes)" if empty
               else f"{exc} (damaged, or cut short?)" if isinstance(exc, (zipfile.BadZipFile, EOFError)) else str(exc))
        raise InputError(f"{readable(archive)}: not a readable comic archive (zip, RAR, 7-Zip or tar): {why}") from exc


def _refuse_a_bomb(archive: Path, total: int) -> None:
    """Refuse an archive whose pages add up to ``total`` bytes unpacked, past :data:`MAX_ARCHIVE_BYTES` and past
    :data:`BOMB_RATIO` times the archive's own size: a volume of high-resolution pages stored in a 2.3 GB CBZ was
    refused as a "zip bomb?" with no way on, though its pages are read one at a time, as a folder's are."""
    if total <= MAX_ARCHIVE_BYTES:
        return
    try:
        size = archive.stat().st_size
    except OSError:
        size = 0
    if size and total <= BOMB_RATIO * size:
        return
    ratio = f", and to {total / size:,.0f} times the archive's own size" if size else ""
    raise InputError(f"{readable(archive)}: pages add up to more than {MAX_ARCHIVE_BYTES // 1024**3} GB "
                     f"uncompressed{ratio}; refusing it (zip bomb?)")


def _covers_above_chapters(folder: tuple[str, ...], groups: dict[tuple[str, ...], list[Page]]) -> bool:
    """Whether the pages of ``folder`` in an archive are all named like a cover and other pages lie below it."""
    return all(COVER_NAME.fullmatch(Path(p.name).stem) for p in groups[folder]) and \
        any(len(other) > len(folder) and other[:len(folder)] == folder for other in groups)


def _archive_sections(archive: Path, base_name: str, root: Path,
                      warn: Callable[[str], None] = lambda line: None) -> list[Section]:
    """One section per folder inside the archive that holds images; ``warn`` hears of pages named outside it."""
    groups: dict[tuple[str, ...], list[Page]] = {}
    hidden: dict[tuple[str, ...], list[Page]] = {}  # pages in folders whose names start with a dot: read only where
    # the archive holds no other (`.hack Legend of the Twilight/` is a title; a `.old/` copy is not a chapter)
    outside: list[str] = []  # pages named outside the archive (``../002.png``): not read, but said
    inside: list[str] = []  # archives and PDFs packed in this archive (not read: named if it holds no page)
    total = 0
    entries = _archive_entries(archive)
    sizes_known = _archive_kind(archive) in (None, "tar")  # a RAR, 7-Zip or compressed tar is listed without them
    last = {member: i for i, (_, member, _) in enumerate(entries)}  # a name packed twice reads as its last entry
    for i, (meant, member, size) in enumerate(entries):
        parts = _safe_member_parts(meant)
        if parts is None and is_image_name(meant.rsplit("/", 1)[-1]):
            outside.append(readable(meant))
        if parts is None or _hidden_member(parts):
            continue
        if not is_image_name(parts[-1]) and not ("." not in parts[-1] and (size or not sizes_known)
                                                 and _is_image_member_without_extension(archive, member)):
            if source_suffix(parts[-1]) in SOURCE_EXTENSIONS:
                inside.append(readable(parts[-1]))
            continue
        total += size
        _refuse_a_bomb(archive, total)
        shown = "/".join(parts)
        into = hidden if any(is_hidden(p) for p in parts[:-1]) else groups
        into.setdefault(parts[:-1], []).append(Page(readable(parts[-1]), archive, member=member,
                                                    member_shown=shown if shown != member else None,
                                                    shadowed=last[member] != i))
    if not groups:
        groups = hidden
    if outside:
        warn(f"{readable(archive)}: skipping {len(outside)} page{'s' if len(outside) != 1 else ''} whose names lead "
             f"out of the archive ({first_few(outside)}): they are not read; repack them inside it")
    if inside:
        inside.sort(key=_natural)
        if not groups:
            shown = ", ".join(inside[:3]) + (f" and {len(inside) - 3} more" if len(inside) > 3 else "")
            raise InputError(f"{readable(archive)}: holds {shown}, not page images; an archive or PDF inside an "
                             "archive is not read: extract it and give the folder")
        warn(f"{readable(archive)}: not reading {first_few(inside)} inside it: an archive or PDF inside an archive "
             "is not read; extract it and give its folder too")
    merged = None  # one chapter's folder, with a release's front or back matter at the archive's root beside it
    # (cover.jpg, credits.jpg, a recruitment page): that chapter's pages, not a chapter of their own nor a volume's
    # art. More pages at the root than that are a chapter of their own (a bonus folder beside them stays apart)
    if () in groups and len(groups) == 2:
        folder = next(folder for folder in groups if folder)
        if len(groups[()]) <= MATTER_PAGES and len(groups[()]) < len(groups[folder]):
            merged, groups[folder] = folder, groups.pop(()) + groups[folder]
    for folder in [f for f in groups if _covers_above_chapters(f, groups)]:
        del groups[folder]  # Series/cover.jpg beside Series/Ep 1/: the series' art, as beside folders on disk
    tops = {folder[:1] for folder in groups}
    own_top = len(groups) > 1 and len(tops) == 1 and all(tops) and \
        readable(next(iter(tops))[0]).casefold() == readable(source_stem(archive.name)).casefold()
    sections = []
    for folder in sorted(groups, key=lambda p: _natural("/".join(p))):
        pages = sorted(groups[folder], key=lambda p: (page_order(p.name), p.member) if folder == merged else
                       page_order(p.member_shown or p.member or p.name))
        shown = folder[1:] if own_top else folder  # Vol.03.cbz holding Vol.03/Ch 9/: "Vol.03/Ch 9"
        name = "/".join((base_name, *map(readable, shown))) if base_name else "/".join(map(readable, shown))
        sections.append(Section(name or readable(source_stem(archive.name)), pages, archive, root))
        if own_top:  # its outputs before were named with the folder twice: found under that name
            sections[-1].former_names.append("/".join((base_name, *map(readable, folder))) if base_name
                                             else "/".join(map(readable, folder)))
    if len(sections) == 1 and base_name and sections[0].name != base_name:  # every page in one folder inside
        # ("Ch 004.cbz" holding "Ch 004/001.jpg", as scanlation releases pack them): the archive's name alone
        sections[0].former_names.append(sections[0].name)
        sections[0].name = base_name
    return sections


# --- PDFs ----------------------------------------------------------------------------------


def _pdf_sections(pdf: Path, name: str, root: Path) -> list[Section]:
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(str(pdf))
        count = len(doc)
        doc.close()
    except Exception as exc:  # pypdfium2 raises PdfiumError (and OSError) for unreadable files
        said = str(exc).rstrip(".")
        if "password" in said.lower():  # "Failed to load document (PDFium: Incorrect password error)"
            raise InputError(f"{readable(pdf)}: password-protected; open it with its password and save a copy "
                             "without one, and give that") from exc
        if "PDFium: Success" in said or "PDFium: Data format error" in said:  # PDFium's words for a document
            # with no page tree (no pages, or cut short): "Success" before pypdfium2 5.15, "Data format error" since
            raise InputError(f"{readable(pdf)}: not a readable PDF (it holds no pages, or is damaged)") from exc
        raise InputError(f"{readable(pdf)}: not a readable PDF ({said})") from exc
    pages = [Page(f"page {i + 1}", pdf, pdf_index=i) for i in range(count)]
    return [Section(name, pages, pdf, root)] if pages else []


# --- EPUB books ----------------------------------------------------------------------------


def _is_epub(archive: Path) -> bool:
    """Whether a zip is an EPUB (its ``mimetype`` says so, beside ``META-INF/container.xml``): its pages are in the
    book's reading order, not its pictures' names' order."""
    try:
        with zipfile.ZipFile(archive) as zf:
            return "META-INF/container.xml" in zf.NameToInfo and "mimetype" in zf.NameToInfo \
                and zf.getinfo("mimetype").file_size < 100 and zf.read("mimetype").strip() == b"application/epub+zip"
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError, NotImplementedError,
            *damaged_data_errors()):
        return False  # read as the archive it claims to be, which says what is wrong


def _book_sections(book: Path, name: str, root: Path, warn: Callable[[str], None]) -> list[Section]:
    """An EPUB's pages in the book's reading order (its spine, see :mod:`.epub`): one section.  A book whose order
    cannot be found is read as the zip it is (its pictures in name order), and ``warn`` says so."""
    from . import epub

    try:
        with zipfile.ZipFile(book) as zf:
            try:
                members = _spine_pages(zf, book, warn)
                _refuse_a_bomb(book, sum(zf.getinfo(m).file_size for m in members))
            except epub.BookError as exc:
                members = None
                why = str(exc)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise InputError(f"{readable(book)}: not a readable EPUB (an EPUB is a zip): {exc}") from exc
    if members is None:
        warn(f"{readable(book)}: no reading order found ({why}); its pictures are read in name order")
        return _archive_sections(book, name, root, warn)
    return [Section(name, [Page(readable(shown), book, member=member) for shown, member in _book_pages(book, members)],
                    book, root)]


def _spine_pages(book, where: Path, warn: Callable[[str], None]) -> list[str]:
    """The entries of the pages of ``book`` (an open zip, or an :class:`.epub.UnpackedBook`) at ``where``, in its
    reading order.  :class:`InputError` for a book with DRM; :class:`.epub.BookError` when it gives no order."""
    from . import epub

    if epub.encrypted_entries(book):
        raise InputError(f"{readable(where)}: the book is encrypted (DRM), so its pages cannot be read; give a copy "
                         "without DRM, or its pages")
    return epub.page_members(book, lambda line: warn(f"{readable(where)}: {line}"))


def _book_pages(book: Path, members: list[str]) -> list[tuple[str, str]]:
    """``(name shown, entry)`` for each page of a book: its file's name, or its path in the book where two pages
    share a name ("p1/img.jpg" and "p2/img.jpg")."""
    if not members:
        raise InputError(f"{readable(book)}: no page pictures in this EPUB (a book of text?); manga2music reads "
                         "books whose pages are pictures")
    names = [posixpath.basename(m) for m in members]
    return list(zip(members if len(set(names)) < len(names) else names, members))


def _unpacked_book_sections(folder: Path, name: str, root: Path, warn: Callable[[str], None]) -> list[Section] | None:
    """An EPUB unpacked into ``folder`` (its META-INF/container.xml is there): its pages in the book's reading order,
    one section, as the zipped book's.  None when the book gives no reading order (``warn`` says so): the folder is
    then read as folders of pictures are."""
    from . import epub

    try:
        pages = _book_pages(folder, _spine_pages(epub.UnpackedBook(folder), folder, warn))
    except epub.BookError as exc:
        warn(f"{readable(folder)}: an unpacked EPUB, but no reading order found ({exc}); its pictures are read in "
             "name order")
        return None
    except InputError as exc:
        return [Section(name, [], folder, root, error=exc.message)]
    except OSError as exc:  # a file of the book that cannot be read: the book's failure, not the run's
        return [Section(name, [], folder, root, error=f"{readable(folder)}: the book cannot be read "
                                                      f"({exc.strerror or exc})")]
    return [Section(name, [Page(readable(shown), folder / member) for shown, member in pages], folder, root)]


def _is_unpacked_book(folder: Path) -> bool:
    from . import epub

    return epub.is_unpacked_book(folder)


def book_page_progression(page: Page) -> str | None:
    """``"rtl"`` or ``"ltr"`` for a page of an EPUB that says which way its pages turn (see :mod:`.epub`), zipped or
    unpacked into a folder, or of a comic archive (or a folder of pages) whose ComicInfo.xml says (see
    :mod:`.comic_info`); None for any other page, or a book that does not say."""
    from . import epub

    if page.member is None:
        for folder in list(Path(page.path).parents)[:6]:  # the book's folder, a few folders above its pictures
            if epub.is_unpacked_book(folder):
                try:
                    return epub.page_progression(epub.UnpackedBook(folder))
                except OSError:
                    return None
        return comic_info_direction(page)
    if page.path.suffix.lower() not in BOOK_EXTENSIONS:
        return comic_info_direction(page)
    try:
        with zipfile.ZipFile(page.path) as zf:
            return epub.page_progression(zf)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return None


def comic_info_direction(page: Page) -> str | None:
    """Which way the pages turn, as the ComicInfo.xml nearest to ``page`` says (an archive's, or one beside the
    pages of a folder); None without one, or when it cannot be read (the pages are read all the same)."""
    from . import comic_info

    try:
        if page.member is None:
            folder = Path(page.path).parent
            name = next((f for f in os.listdir(folder) if f.lower() == comic_info.NAME), None)
            if name is None:
                return None
            return comic_info.reading_direction(read_regular_file(folder / name, comic_info.MAX_BYTES,
                                                                  what="ComicInfo.xml"))
        if page.pdf_index is not None:
            return None
        entries = {shown: name for shown, name, _ in _archive_entries(page.path)}
        found = comic_info.nearest(entries, page.member_shown or page.member)
        return comic_info.reading_direction(_read_archive_member(page.path, entries[found])) if found else None
    except (Manga2MusicError, OSError):
        return None


def pdf_page_size(pdf: Path, index: int) -> tuple[float, float]:
    """A PDF page's size in points, without rendering it."""
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(str(pdf))
        try:
            page = doc[index]
            size = page.get_size()
            page.close()
            return size
        finally:
            doc.close()
    except Exception as exc:
        raise PageError(f"{readable(pdf)}: page {index + 1} cannot be read ({exc})") from exc


def render_pdf_page(pdf: Path, index: int, long_side: int = PDF_RENDER_LONG_SIDE):
    """Render one PDF page so that its long side is ``long_side`` pixels (a PIL image)."""
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(str(pdf))
        try:
            page = doc[index]
            width, height = page.get_size()
            scale = max(1, int(long_side)) / max(width, height, 1)
            image = page.render(scale=scale).to_pil()
            page.close()
            return image
        finally:
            doc.close()
    except Exception as exc:
        raise PageError(f"{readable(pdf)}: page {index + 1} cannot be rendered ({exc})") from exc


def file_sha256(path: Path) -> str:
    """The sha256 of a whole file, read in blocks (for a PDF: what its pages' records point to)."""
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError as exc:
        raise PageError(f"{readable(path)}: cannot read ({exc.strerror or exc})") from exc


# --- folders -------------------------------------------------------------------------------


def _walk(folder: Path, excluded: set[Path], unreadable: Callable[[OSError], None],
          hidden: Callable[[Path], None] = lambda path: None) -> Iterator[tuple[Path, list[str], list[str], bool]]:
    """os.walk in natural order, skipping hidden folders: ``(folder, its folders, its files, whether it is inside an
    output folder)``.  An output folder (the excluded one, or any other a run wrote into: its lock file is there) and
    the folders in it are walked like the others, for a chapter's pages may be there (``score "Ch 1" -o "Ch 1"`` puts
    the music beside them); the last value says so, for the folders a run made there hold music, not chapters.
    Links to folders are followed (a series of linked chapters), each real folder read once: a link back up the tree
    (a loop) or to a folder read already is not read again.  A folder that cannot be listed (no permission) goes to
    ``unreadable``; a hidden folder that is not a system one (:func:`is_system_folder`) to ``hidden``."""
    seen = {Path(folder).resolve()}
    # the folders (as os.walk names them) in an output folder: the given folder too when it is one
    in_output = {os.fspath(folder)} if seen & excluded or os.path.exists(Path(folder) / LOCK_NAME) else set()
    # the folders inside without following links, listed at the first link met (most libraries have none): a link
    # to one of them is not read, the folder itself is (a "Bonus/Favourite" link to "Vol 02/Chapter 2" took the
    # chapter's name and place, and left Vol 02 "empty")
    inside: set[Path] | None = None
    for dirpath, dirnames, filenames in os.walk(folder, onerror=unreadable, followlinks=True):
        here = Path(dirpath)
        if not _entries_reachable(dirpath, dirnames + filenames, unreadable):
            dirnames[:] = []
            continue
        here_in_output = dirpath in in_output
        kept = []
        for d in sorted(dirnames, key=_natural):  # in reading order: of two links to one folder, the first is read
            try:
                real, link = (here / d).resolve(), (here / d).is_symlink()
            except OSError as exc:  # a name too long for a path, a folder gone since it was listed
                unreadable(OSError(exc.errno, exc.strerror, os.path.join(dirpath, d)))
                continue
            if link:
                if inside is None:
                    inside = {Path(p).resolve() for p, _, _ in os.walk(folder, onerror=None)}
                if real in inside:
                    continue
            if is_hidden(d) and not is_system_folder(d) and not here_in_output:
                hidden(here / d)
            if not is_hidden(d) and real not in seen:
                kept.append(d)
                seen.add(real)
                if here_in_output or real in excluded or os.path.exists(real / LOCK_NAME):
                    in_output.add(os.path.join(dirpath, d))  # the path os.walk will give it
        dirnames[:] = kept
        yield here, dirnames, sorted((f for f in filenames if not is_hidden(f)), key=page_order), here_in_output


def _entries_reachable(dirpath: str, names: list[str], unreadable: Callable[[OSError], None]) -> bool:
    """Whether what a listed folder holds can be reached: a folder that may be listed but not entered (mode 644)
    names its files, and every look at one failed with a traceback that ended the run.  Such a folder goes to
    ``unreadable``, as one that cannot be listed does."""
    if not names:
        return True
    try:
        os.lstat(os.path.join(dirpath, names[0]))
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):  # removed since it was listed
            return True
        unreadable(OSError(exc.errno, exc.strerror, dirpath))
        return False
    return True


def _holds_pages(folder: Path, depth: int = 2) -> bool:
    """Whether ``folder`` or its folders, ``depth`` deep, hold a page, an archive or a PDF (a few listings)."""
    try:
        with os.scandir(folder) as entries:
            listed = list(entries)
    except OSError:
        return False
    if any(e.is_file() and not is_hidden(e.name) and (is_image_name(e.name) or source_suffix(e.name)
                                                     in SOURCE_EXTENSIONS) for e in listed):
        return True
    return depth > 0 and any(e.is_dir(follow_symlinks=False) and not is_hidden(e.name)
                             and _holds_pages(Path(e.path), depth - 1) for e in listed[:200])


#: the types of file a library holds beside its chapters: a broken link named so is no chapter (a link named
#: "Ch.Extra", "Vol.1 Ch.Omake" or "Chapter 1.5" is)
OTHER_FILE_TYPES = {".txt", ".md", ".nfo", ".xml", ".json", ".yaml", ".yml", ".html", ".htm", ".url", ".lnk",
                    ".desktop", ".ini", ".db", ".log", ".sfv", ".md5", ".sha1", ".sha256", ".par2", ".torrent",
                    ".mp3", ".wav", ".flac", ".ogg", ".opus", ".m4a", ".aac", ".mid", ".midi", ".mp4", ".mkv",
                    ".avi", ".webm", ".mov", ".exe", ".sh", ".bat", ".py", ".doc", ".docx", ".odt", ".rtf",
                    ".csv", ".srt", ".vtt", ".ass", ".css", ".js", ".lock", ".tmp", ".bak", ".old", ".orig"}


def _broken_folder_link(path: Path) -> bool:
    """A link whose target is not there, named as a folder is (no type of file at its end, see
    :data:`OTHER_FILE_TYPES`): a chapter on a drive or share not mounted.  One named as a page or archive fails as
    that (``not a regular file``); a ``notes.txt`` is no chapter."""
    try:
        dangling = path.is_symlink() and not path.exists()
    except OSError:  # a name too long for a path: it is said where it is read
        return False
    return (not is_hidden(path.name) and dangling
            and path.suffix.lower() not in OTHER_FILE_TYPES and not is_image_name(path.name)
            and source_suffix(path.name) not in SOURCE_EXTENSIONS and path.suffix.lower() not in KINDLE_EXTENSIONS)


def broken_link_words(path: Path) -> str:
    """How a link whose target is not there is said: where it leads, and that it is not there (a drive or share
    not mounted?), or that it leads back to itself."""
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # `ln -s "Ch 4" "S/Ch 4"`: a link to itself, which "a share not mounted" misled
            return f"{readable(path)}: a link to {readable(target)}, which leads back to itself (a loop of links)"
    return (f"{readable(path)}: a link to {readable(target)}, which is not there (a drive or share not "
            "mounted?)")


def _links_inside(folder: Path) -> bool:
    """Whether ``folder`` holds links to folders (read where they are, see :func:`_walk`): it is not empty."""
    try:
        return any((folder / name).is_symlink() and (folder / name).is_dir() for name in os.listdir(folder))
    except OSError:
        return False


def _relative_name(path: Path, root: Path, root_name: str) -> str:
    rel = path.relative_to(root).as_posix()
    return root_name if rel == "." else readable(rel)


def _source_names(files: list[str], dirnames: list[str]) -> dict[str, str]:
    """The section name (relative to its folder) of each archive/PDF among ``files``.

    A source is named by its stem (``chapter.cbz`` -> ``chapter``) unless another source
    in the same folder (a subfolder, an archive or a PDF) shares that stem: then every one of them keeps its extension
    (``unmerged.cbz``, ``unmerged.pdf``), so a user can tell the outputs apart.
    """
    sources = [f for f in files if source_suffix(f) in SOURCE_EXTENSIONS]
    stems: dict[str, int] = {}
    for f in sources:
        stems[source_stem(f).lower()] = stems.get(source_stem(f).lower(), 0) + 1
    for d in dirnames:
        stems[d.lower()] = stems.get(d.lower(), 0) + 1
    return {f: (f if stems[source_stem(f).lower()] > 1 else source_stem(f)) for f in sources}


#: what library managers (Komga, Kavita, Plex) name the art of a series or volume: kept beside its chapters, it is
#: not a chapter of one page
COVER_NAME = re.compile(r"(cover|folder|poster|front|thumb|thumbnail|banner|fanart)([ ._-].*)?", re.IGNORECASE)


def _only_covers(images: list[str], dirs: list[str], files: list[str], in_output: bool) -> bool:
    """Loose images that are all named like a cover, beside chapter folders, archives or PDFs, or in an output
    folder (``music/cover.jpg``: the album art a music player shows)."""
    beside = in_output or dirs or any(source_suffix(f) in SOURCE_EXTENSIONS for f in files)
    return bool(beside) and all(COVER_NAME.fullmatch(Path(f).stem) for f in images)


def _folder_sections(folder: Path, excluded: set[Path], warn: Callable[[str], None]) -> list[Section]:
    sections: list[Section] = []
    # the name the user gave (a link keeps its own name); "." and ".." become the folders they stand for
    given_name = readable(Path(os.path.abspath(folder)).name)
    root_name = given_name.lstrip(".") or given_name or "pages"  # `run .hack`: "hack", not hidden output files

    def unreadable(exc: OSError) -> None:  # a chapter the user may not read: a failed section, not left out
        where = Path(exc.filename) if exc.filename else folder
        sections.append(Section(_relative_name(where, folder, root_name), [], where, folder,
                                error=f"{readable(where)}: this folder cannot be read ({exc.strerror or exc})"))

    def hidden(path: Path) -> None:  # left unread (a user's `.old` copy of a chapter), but said where it holds
        if _holds_pages(path):  # pages (`.hack//Legend of the Twilight`, a title, was left out without a word)
            warn(f"Skipping {readable(path)}: a hidden folder (its name starts with a dot) that holds pages; give it "
                 "as a PATH to read it")

    books_without_order: list[Path] = []  # unpacked EPUBs read as folders: their other folders need no line each
    for here, dirs, files, in_output in _walk(folder, excluded, unreadable, hidden):
        if "META-INF" in dirs and _is_unpacked_book(here):
            book = _unpacked_book_sections(here, _relative_name(here, folder, root_name), folder, warn)
            if book is not None:
                sections.extend(book)
                dirs[:] = []  # its folders are the book's, not chapters
                continue
            books_without_order.append(here)
        for f in files:  # a link to a chapter on a drive or share not mounted: os.walk lists it as a file
            if _broken_folder_link(here / f):
                sections.append(Section(_relative_name(here / f, folder, root_name), [], here / f, folder,
                                        error=broken_link_words(here / f)))
        unfinished = _unfinished_downloads(files) + [f"{d}/" for d in dirs if UNFINISHED_FOLDER.fullmatch(d)]
        dirs[:] = [d for d in dirs if not UNFINISHED_FOLDER.fullmatch(d)]
        images = [f for f in files if is_image_name(f) or "." not in f and not in_output
                  and _holds_an_image(here / f)]
        if images and _only_covers(images, dirs, files, in_output):
            images = []  # S/cover.jpg beside S/Ch 1/: the series' art (given alone, it is read), or album art
        if images:
            sections.append(
                Section(_relative_name(here, folder, root_name), [Page(readable(f), here / f) for f in images], here,
                        folder)
            )
        misnamed = [] if in_output else _misnamed_pictures(here, files, set(images))
        if misnamed:
            many = len(misnamed) != 1
            warn(f"{readable(here)}: leaving out {len(misnamed)} picture{'s' if many else ''} whose name{'s do' if many else ' does'} "
                 f"not end as a page's ({first_few([readable(f) for f in misnamed])}); rename "
                 f"{'them' if many else 'it'} (to .png, .jpg...) to read {'them' if many else 'it'} as pages")
        if unfinished:
            many = len(unfinished) != 1
            warn(f"{readable(here)}: skipping {len(unfinished)} unfinished download{'s' if many else ''} "
                 f"({first_few([readable(f) for f in unfinished])}); rerun once {'they are' if many else 'it is'} "
                 "complete")
        if not in_output:
            for f, kind, extension in _sources_without_extension(here, files, set(images)):
                warn(f"Skipping {readable(here / f)}: {kind} whose name has no extension; rename it (to "
                     f"{readable(f)}{extension}) to read it")
        kindle = [f for f in files if Path(f).suffix.lower() in KINDLE_EXTENSIONS]
        for f in kindle:
            warn(f"Skipping {readable(here / f)}: {KINDLE_LINE}")
        sources = _source_names(files, dirs)
        beside = {d.lower(): d for d in dirs}
        for f in sources:  # `zip -r "Ch 1.cbz" "Ch 1"` left beside its folder: a second chapter of the same pages,
            folder_too = beside.get(source_stem(f).lower())  # made as "Ch 1.cbz" with other music, unsaid
            if folder_too is not None and not in_output:
                warn(f"{readable(here / f)} and the folder {readable(folder_too)} beside it share a name: each is "
                     f"read as a chapter of its own, named with its extension; if one is a copy of the other, move "
                     f"it out")
        for f, name in sources.items():
            found = _file_sections(here / f, _relative_name(here / name, folder, root_name), folder, warn)
            if not found:  # an empty archive (a download that failed), one holding only ComicInfo.xml: said, as
                warn(f"Skipping {readable(here / f)}: no pages in it")  # an empty chapter folder is
            sections.extend(found)
        if not (images or sources or dirs or kindle or unfinished) and here != folder and not in_output \
                and not _links_inside(here) and not any(here.is_relative_to(book) for book in books_without_order):
            # a chapter whose download failed, say: said, as the PATH itself is when it holds no page (not a folder
            # of an output folder: a run made it, for music)
            warn(f"Skipping {readable(here)}: no pages in it{_what_else(files, here)}")
    for section in sections:
        if section.name == root_name != given_name:  # what an earlier version made for it as ".hack" stays its own
            section.former_names.append(given_name)
    return sections


#: the first bytes of the files that hold pages of their own: what a chapter saved without its extension is
_SOURCE_MAGIC = ((b"PK\x03\x04", "a zip archive", ".cbz"), (b"%PDF-", "a PDF", ".pdf"),
                 (b"Rar!\x1a\x07", "a RAR archive", ".cbr"), (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", ".cb7"))


def _sources_without_extension(here: Path, files: list[str], pages: set[str]) -> list[tuple[str, str, str]]:
    """(name, what it is, the extension it wants) of the files in ``here`` whose names end in no extension (``Ch 1``,
    ``Vol.03``) but whose first bytes say they are an archive or a PDF: a chapter saved without its ``.cbz`` was
    left out without a word (a page without one is read, by its first bytes).  A named file (``notes.docx``, a
    zip too) is not looked into."""
    found = []
    for f in files:
        suffix = Path(f).suffix
        if f in pages or is_hidden(f) or suffix[1:].isalpha() or source_suffix(f) in SOURCE_EXTENSIONS \
                or UNFINISHED_DOWNLOAD.fullmatch(f) or not is_regular_file(here / f):  # (a "Ch 13.cbz_tmp" still
            continue  # downloading is said as such; a FIFO would hang its read)
        try:
            with open(here / f, "rb") as stream:
                head = stream.read(8)
        except OSError:
            continue
        for magic, kind, extension in _SOURCE_MAGIC:
            if head.startswith(magic):
                found.append((f, kind, extension))
                break
    return found


def _what_else(files: list[str], here: Path) -> str:
    hidden = _hidden_pages(here)
    if hidden:  # `.001.png`: "an empty folder", with 3 images in it
        return f" ({_hidden_pages_words(hidden)})"
    if not files:
        return " (an empty folder)"
    shown = ", ".join(readable(f) for f in files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    return f" ({len(files)} other file{'s' if len(files) != 1 else ''}: {shown})"


def _hidden_pages(folder: Path) -> list[str]:
    """The images in ``folder`` whose names start with a dot (hidden: not read as pages), less a Mac's resource
    forks (``._001.png``, no page at all)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted((n for n in names if n.startswith(".") and not n.startswith("._") and is_image_name(n[1:])
                   and (folder / n).is_file()), key=natsort_keygen(alg=ns.PATH))


def _hidden_pages_words(hidden: list[str]) -> str:
    many = len(hidden) != 1
    shown = ", ".join(readable(n) for n in hidden[:3]) + (f" and {len(hidden) - 3} more" if len(hidden) > 3 else "")
    return (f"{len(hidden)} hidden page{'s' if many else ''}, whose name{'s start' if many else ' starts'} with a dot: "
            f"{shown}; rename {'them' if many else 'it'} to read {'them' if many else 'it'}")


def _file_sections(path: Path, name: str, root: Path, warn: Callable[[str], None]) -> list[Section]:
    """The sections of one file; an archive or PDF that cannot be read is one failed section, not a failed run."""
    suffix = source_suffix(path.name)
    if suffix not in SOURCE_EXTENSIONS and not _an_image_given(path):
        return []
    if not is_regular_file(path):
        try:  # a chapter's archive on a share not mounted: said as a folder's link is (it was "not a regular file
            # (a FIFO, device or broken link)")
            dangling = path.is_symlink() and not path.exists()
        except OSError:
            dangling = False
        return [Section(name, [], path, root, error=broken_link_words(path) if dangling else
                        f"{readable(path)}: not a regular file (a FIFO or device)")]
    if suffix in SOURCE_EXTENSIONS:
        try:  # said as a page or folder that cannot be read is: a PDF or archive without read permission was "not a
            with open(path, "rb"):  # readable PDF (PDFium: File access error)" or "not a readable comic archive"
                pass
        except OSError as exc:
            return [Section(name, [], path, root, error=f"{readable(path)}: cannot read ({exc.strerror or exc})")]
    try:
        if suffix in ARCHIVE_EXTENSIONS:
            if _archive_kind(path) is None and _is_epub(path):  # renamed .cbz to open in a comic reader
                return _book_sections(path, name, root, warn)
            return _archive_sections(path, name, root, warn)
        if suffix in PDF_EXTENSIONS:
            return _pdf_sections(path, name, root)
        if suffix in BOOK_EXTENSIONS:
            return _book_sections(path, name, root, warn)
    except InputError as exc:
        return [Section(name, [], path, root, error=exc.message)]
    return [Section(name, [Page(readable(path.name), path, alone=True)], path, root)]


def _an_image_given(path: Path) -> bool:
    """Whether ``path``, given as a PATH, is an image: a hidden one too (``.p.png``: given by name, it is meant, as
    a hidden folder or archive given is), but not a Mac's ``._page.png`` beside a page, nor ``Thumbs.db``."""
    name = path.name
    if is_hidden(name) and name.startswith(".") and not name.startswith("._"):
        name = name.lstrip(".")
    return bool(name) and is_image_name(name)


def _covers_beside_chapters(given: list[Path]) -> set[Path]:
    """The images given among folders, archives or PDFs of their own folder (``run S/*``) that are all named like a
    cover: the series' art, left out as in ``run S`` (:func:`_only_covers`)."""
    by_folder: dict[Path, list[Path]] = {}
    beside: set[Path] = set()
    for path in given:
        parent = Path(os.path.abspath(path)).parent
        if path.is_dir() or source_suffix(path.name) in SOURCE_EXTENSIONS:
            beside.add(parent)
        elif _an_image_given(path):
            by_folder.setdefault(parent, []).append(path)
    return {path for parent, images in by_folder.items() if parent in beside
            and all(COVER_NAME.fullmatch(Path(p.name).stem) for p in images) for path in images}


def check_paths_exist(paths: Iterable[str | Path]) -> None:
    """One line for the first PATH that is not there (the commands check before their progress display starts)."""
    for path in paths:
        if not os.path.lexists(path):
            hint = None
            if Path(path).name == "samples":  # the README's first command, run outside the source folder
                hint = ("the sample pages are in manga2music's source folder (samples/): run this there, or give "
                        "a folder of your own pages")
            raise InputError(f"{readable(path)}: no such file or folder", hint=hint)


def find_sections(paths: Iterable[str | Path], *, exclude: Iterable[str | Path] = (),
                  warn: Callable[[str], None] = lambda line: None) -> list[Section]:
    """Every section under ``paths``, in reading order (natural order within each PATH; the PATHs as given).

    ``exclude`` lists folders never read as input (the output folder, even when it
    lies inside a PATH).  Raises :class:`InputError` for a missing PATH or when no
    page is found at all; ``warn`` gets a line for each folder under a PATH with no page in it.
    """
    excluded = {Path(p).resolve() for p in exclude}
    sections: list[Section] = []
    given = [Path(p) for p in paths]
    if not given:
        raise InputError("no PATH given", hint="pass a folder of pages, an image, a .cbz/.zip or a .pdf")
    check_paths_exist(given)
    empty: list[Path] = []  # archives given with no page in them (a download that failed)
    covers = _covers_beside_chapters(given) if len(given) > 1 else set()
    for path in given:
        if path.is_dir() and len(given) > 1 and is_system_folder(path.name):
            continue  # `run S/*`: S's $RECYCLE.BIN or lost+found, passed over unsaid as in a folder
        if path in covers:
            continue  # `run S/*`: S's cover.jpg, passed over unsaid as in a folder
        if path.is_dir():  # folders, archives and PDFs side by side, in reading order
            found = _in_reading_order(_folder_sections(path, excluded, warn))
            if not found and len(given) > 1 and path.resolve() not in excluded:  # named, and dropped unsaid (alone,
                warn(f"Skipping {readable(path)}: no pages in it")  # "no pages found" below says it)
            sections.extend(found)
        else:
            suffix = source_suffix(path.name)
            if suffix in SOURCE_EXTENSIONS or _an_image_given(path):  # an archive's chapters as the manifest
                # lists them (a prologue first)
                stem = source_stem(path.name)  # a hidden image given by name (.p.png): "p", not a hidden output
                found = _file_sections(path, readable(stem.lstrip(".") or stem), path.parent, warn)
                if not found:  # said below, as inside a folder (alone, "no pages found" says it)
                    empty.append(path)
                sections.extend(_in_reading_order(found))
            elif suffix in KINDLE_EXTENSIONS:
                raise InputError(f"{readable(path)}: {KINDLE_LINE}")
            elif path.is_symlink() and not path.exists():
                raise InputError(broken_link_words(path))
            elif len(given) > 1 and is_hidden(path.name):
                continue  # `run S/*`: S's Thumbs.db or desktop.ini, passed over unsaid as in a folder
            elif len(given) > 1:  # `run S/*`: S's details.json (Tachiyomi's), a notes file: the chapters go on
                warn(f"{readable(path)}: not a folder, image, comic archive, .pdf or .epub; passed over")
            else:
                raise InputError(
                    f"{readable(path)}: not a folder, image, comic archive ({ARCHIVE_NAMES}), .pdf or .epub",
                    hint="image types: " + ", ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS)),
                )
    if not sections and covers:  # the art was all there is (`run S/*` of chapters not downloaded yet): read it
        for path in covers:
            sections.extend(_file_sections(path, readable(source_stem(path.name)), path.parent, warn))
    if not sections:
        for path in given:
            made = _made_from(path) if path.is_dir() else None
            if made is not None:  # the wrong folder given, not pages missing
                raise InputError(f"{readable(path)} is a folder manga2music wrote (its manifest.json), not pages"
                                 + (f"; its pages were in {made}" if made else ""),
                                 hint="give the folder of pages (-o names the folder to write into)")
        where = ", ".join(readable(p) for p in given)
        kinds = ", ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
        hidden = [words for p in given if p.is_dir() and (words := _hidden_pages(p))]
        raise InputError(f"no pages found in {where} (looked for {kinds} images, comic archives, PDFs and EPUBs, in "
                         "every subfolder)" + (f"; {_hidden_pages_words(hidden[0])}" if hidden else ""))
    for path in empty:
        warn(f"Skipping {readable(path)}: no pages in it")
    for section in sections:
        section.pages = _with_tiff_pages(section.pages, warn)
    return _unique_names(sections)


def _with_tiff_pages(pages: list[Page], warn: Callable[[str], None] = lambda line: None) -> list[Page]:
    """``pages``, each multi-page TIFF among them (a scanner's chapter in one file, whatever its name says: a
    folder's files are told by their first bytes) standing for its pages: ``scan.tif (page 1)``,
    ``scan.tif (page 2)``... (its frames, counted from their headers; nothing is decoded; a reduced-size preview
    frame is no page).  A TIFF in a RAR, 7-Zip or compressed tar is left whole (counting would unpack the archive
    while the series is only listed): its first page is read, and said.  ``warn`` is told of a TIFF damaged after
    some of its pages."""
    out = []
    for page in pages:
        frames = _tiff_frames(page, warn) if _may_be_tiff(page) else None
        if frames is None or frames == [0]:
            out.append(page)
        elif len(frames) == 1:  # one page, after a preview frame: that page, not the preview
            out.append(replace(page, frame=frames[0]))
        else:
            out.extend(replace(page, name=tiff_page_name(page.name, n), frame=k) for n, k in enumerate(frames))
    return out


def _may_be_tiff(page: Page) -> bool:
    """Whether ``page`` may be a TIFF: named so, or (a file in a folder) its first bytes say so."""
    if page.name.lower().endswith((".tif", ".tiff")):
        return True
    if page.member is not None or page.pdf_index is not None or not is_regular_file(page.path):
        return False  # a FIFO named 002.png is not opened: opening one waits for a writer, for ever
    try:
        with open(page.path, "rb") as fh:
            return fh.read(4) in (b"II*\x00", b"MM\x00*")
    except OSError:
        return False


def tiff_page_name(name: str, number: int) -> str:
    """The name of the page ``number`` (0-based, among its pages) of the multi-page TIFF ``name``:
    ``scan.tif (page 2)`` (not ``scan.tif#2``: that is how a tall strip's parts are named)."""
    return f"{name} (page {number + 1})"


def _tiff_frames(page: Page, warn: Callable[[str], None]) -> list[int] | None:
    """The frames of the TIFF ``page`` that are pages (not a reduced-size preview); None when it cannot be told
    (reading the page says what is wrong)."""
    if page.member is not None and _archive_kind(page.path) not in (None, "tar"):
        return None
    try:
        from .pages import MAX_FRAMES, page_frames

        if page.member is None and is_regular_file(page.path):
            found = page_frames(page.path, page.source)  # its headers alone
        else:
            found = page_frames(page.read_bytes(), page.source)
    except Exception:  # noqa: BLE001 - a broken file is reported when its page is read, in one line
        return None
    if not found.whole:
        many = len(found.pages) >= MAX_FRAMES
        warn(f"{page.source}: " + (f"a TIFF of more than {MAX_FRAMES} pages: the first {MAX_FRAMES} are read" if many
                                   else f"a multi-page TIFF damaged after its page {len(found.pages)}: the pages "
                                        "before are read, the rest left out (save it again from its scanner's "
                                        "software)"))
    return found.pages


def _made_from(folder: Path) -> str | None:
    """Where the pages were, when ``folder`` is an output folder manga2music wrote (a manifest.json of ours): the
    folder, archive or PDF its sections' records name (the folder that holds them all, for several), ``""`` when
    none does; None for any other folder."""
    import json

    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("tool") != "manga2music":
        return None
    sources = []
    for entry in manifest.get("sections") or []:
        record = entry.get("record") if isinstance(entry, dict) else None
        try:
            pages = json.loads((folder / record).read_text(encoding="utf-8")).get("pages") if isinstance(record, str) \
                else None
        except (OSError, ValueError, AttributeError):
            continue
        if pages and isinstance(pages[0], dict) and isinstance(pages[0].get("path"), str):
            first = pages[0]
            inside = first.get("member") is not None or first.get("pdf_index") is not None
            sources.append(first["path"] if inside else str(Path(first["path"]).parent))
    try:
        return readable(os.path.commonpath(sources)) if sources else ""
    except ValueError:  # paths on different drives
        return readable(sources[0])


def output_key(name: str) -> str:
    """What a section name becomes on disk, folded as case- and form-blind file systems fold it (:func:`name_key`)."""
    from .files import name_key

    return name_key(written_as(name))


def written_as(name: str) -> str:
    """What a section name becomes on disk (``Ch:1`` is ``Ch_1``, ``CON`` is ``_CON``)."""
    from .outputs import safe_part

    return "/".join(safe_part(p) for p in name.split("/") if p)


def folders_above(section: Section) -> tuple[str, ...]:
    """The folders above where the section's name starts, nearest last: ``("S", "Vol 10")`` for the folder
    ``S/Vol 10/Chapter 1`` given as a PATH (named "Chapter 1"), or for its subfolder "Chapter 1" of ``S/Vol 10``."""
    root = Path(section.root)
    starts_at = root.parent if Path(section.origin) == root and section.name == readable(root.name) else root
    try:
        return tuple(readable(p) for p in starts_at.resolve().parts[1:])
    except OSError:
        return ()


def _names_by_folder(sections: list[Section]) -> None:
    """Sections of several PATHs with one name (``run "S/Vol 9/Chapter 1" "S/Vol 10/Chapter 1"``, as a shell's
    ``S/Vol*/*`` gives them) are named by as many folders above them as tell them apart ("Vol 9/Chapter 1", as
    ``run S`` names them), not numbered in the order given ("Chapter 1", "Chapter 1-2")."""
    groups: dict[str, list[Section]] = {}
    for section in sections:
        groups.setdefault(output_key(section.name), []).append(section)
    for group in groups.values():
        if len(group) < 2:
            continue
        above = [folders_above(s) for s in group]
        depth = [1] * len(group)  # each takes one more folder while its name is still another's
        while True:
            names = ["/".join([*a[-k:], s.name]) for a, k, s in zip(above, depth, group)]
            keys = [output_key(n) for n in names]
            clashing = [i for i, key in enumerate(keys) if keys.count(key) > 1]
            if not clashing:
                for section, name in zip(group, names):
                    section.plain_name, section.name = section.name, name
                break
            if any(depth[i] >= len(above[i]) for i in clashing):  # no folder left to tell them apart: numbered
                break
            for i in clashing:
                depth[i] += 1


def _unique_names(sections: list[Section]) -> list[Section]:
    """Two PATHs may hold sections whose outputs would collide (same name, or names that only differ in
    case or in characters file systems refuse): keep all, named by the folders that tell them apart
    (:func:`_names_by_folder`), else numbering the later ones ``-2``, ``-3``...
    The same source given twice (a folder and its parent) is one section."""
    seen_sources: set[tuple] = set()
    kept = []
    for section in sections:
        where = tuple((os.path.realpath(p.path), p.member, p.pdf_index, p.frame) for p in section.pages)
        if where and where in seen_sources:
            continue
        seen_sources.add(where)
        kept.append(section)
    _names_by_folder(kept)
    for section, name in zip(kept, unique_names([s.name for s in kept])):
        section.given_name, section.name = section.name, name
    return kept


#: names a section cannot write under: its record would be the output folder's manifest.json
RESERVED_NAMES = ("manifest",)


def reserved_keys() -> set[str]:
    """The :func:`output_key` of every name in :data:`RESERVED_NAMES` (a section of that name is numbered)."""
    return {output_key(name) for name in RESERVED_NAMES}


#: what a section's own files add to its name (``X.cues.json``, ``X.score.wav``, ``X.take2.wav``, ``X.cue01.loop.wav``,
#: ``X.scene03.txt``...): a section named ``X.cues`` would write its record over X's cue sheet
_OWN_FILE_TAIL = re.compile(r"^(.+)\.(?:analysis|read|cues|score|take\d+|scene\d+|cue\d+(?:\.loop)?)$")


def own_file_stem(key: str) -> str | None:
    """``x`` for an output key ``x.cues`` (``x.take2``, ``x.score``...): a section of that name would share its
    files with ``x``'s (its record is ``x``'s cue sheet); None for a key of no such ending."""
    found = _OWN_FILE_TAIL.match(key)
    return found.group(1) if found else None


class TakenNames:
    """The output keys (:func:`output_key`) sections write under: ``key in taken`` is True for one of them, and for
    a key whose files would be one of theirs or theirs one of its (``x.cues`` beside ``x``, either way round)."""

    def __init__(self, keys=()):
        self.keys: set[str] = set()
        self.stems: set[str] = set()  # "x" for a taken "x.cues"
        for key in keys:
            self.add(key)

    def add(self, key: str) -> None:
        self.keys.add(key)
        stem = _OWN_FILE_TAIL.match(key)
        if stem:
            self.stems.add(stem.group(1))

    def __contains__(self, key: str) -> bool:
        return self.clashing(key) is not None

    def clashing(self, key: str) -> str | None:
        """The taken key ``key`` clashes with (itself, ``x.cues`` for ``x``, ``x`` for ``x.cues``); None: free."""
        if key in self.keys:
            return key
        if key in self.stems:
            return next(k for k in self.keys if (m := _OWN_FILE_TAIL.match(k)) and m.group(1) == key)
        stem = _OWN_FILE_TAIL.match(key)
        return stem.group(1) if stem and stem.group(1) in self.keys else None


def unique_names(names: list[str], taken: Callable[[int, str], bool] = lambda index, name: False) -> list[str]:
    """``names`` with each one that would write over an earlier one's outputs numbered ``-2``, ``-3``...: names
    that differ only in case or in characters file systems refuse collide too, and so do :data:`RESERVED_NAMES`
    and the names ``taken(index, name)`` says another holds for the name at ``index``, and names whose files would be
    another's (:class:`TakenNames`)."""
    seen = TakenNames(reserved_keys())
    out = list(names)
    # a name written as it is first: `Ch_1` beside `Ch:1` (written `Ch_1` too) was `Ch_1-2`, the one whose file
    # name needed no change losing it
    for index in sorted(range(len(names)), key=lambda i: written_as(names[i]) != names[i]):
        given = names[index]
        name, n = given, 1
        while output_key(name) in seen or taken(index, name):
            n += 1
            name = f"{given}-{n}"
        seen.add(output_key(name))
        out[index] = name
    return out


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
