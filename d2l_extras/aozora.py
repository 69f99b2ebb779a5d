"""Read a work of Aozora Bunko (青空文庫) as a reader meets it, in paragraphs and sentences.

Framework independent; standard library only.

    from d2l_extras.aozora import read_aozora, paragraphs
    text = read_aozora()  # the bundled 吾輩は猫である, one paragraph per line
    paras = paragraphs(text)  # [['吾輩は猫である。', '名前はまだ無い。'], ...]

`read_aozora(path)` also reads any other Aozora work: the text file (Shift_JIS as Aozora
distributes it, or UTF-8), or Aozora's own download, a zip that holds one such text file.
data/aozora/README.md explains the notation that is removed.

The cleaning rules, in the order they are applied:

1. The header goes: the title block and the notation legend (【テキスト中に現れる記号について】)
   up to its second line of hyphens. A text without the legend loses the short title block
   before its first empty line (at most 6 lines, none with 。); a text with neither keeps all.
2. The credits go: the first line that starts with 底本： and everything after it.
3. A character outside JIS X 0208, written ※［＃「…」、第3水準1-87-64］ (or with U+XXXX), becomes
   that character; where the note gives no code, the ※ stays.
4. Notes ［＃…］ (layout, emphasis, corrections) are removed; the text they annotate stays.
5. Ruby 《…》 (readings) is removed; the text it reads stays.
6. The ruby start mark ｜ is removed.
7. The brackets 〔…〕 around European text are removed (its accents stay decomposed, e'
   for é).
8. Each line loses its indentation and surrounding spaces; lines left empty go. What stays is
   one paragraph per line, including the chapter headings (一, 二, ...).
"""

import codecs
import io
import re
import stat
import zipfile
import zlib
from pathlib import Path

BUNDLED_NOVEL = Path(__file__).resolve().parent.parent / 'data/aozora/wagahaiwa_nekodearu.txt'

_MAX_BYTES = 64 * 2**20  # far above any Aozora work (the longest texts are a few MB)
_HEADER_LINES = 100  # the notation legend ends within this many lines
_TITLE_LINES = 6  # a title block without legend: title, subtitle, author, translator, ...
_HYPHENS = re.compile(r'-{10,}')
_CREDITS = re.compile(r'底本[：:]')
_GAIJI = re.compile(r'※［＃([^［］\n]*)］')
_JIS_CODE = re.compile(r'(?<![\d-])([12])-(\d{1,2})-(\d{1,2})(?![\d-])')  # plane-row-cell
_UNICODE = re.compile(r'U\+([0-9A-Fa-f]{4,6})')
# Each pattern stops at the next opening bracket, so that an unclosed one costs no more than
# the text up to the next bracket: cleaning takes time linear in the file, whatever it holds.
_NOTE = re.compile(r'［＃[^［］]*］')
_RUBY = re.compile(r'《[^《》]*》')
_EUROPEAN = re.compile(r'〔([^〔〕]*)〕')
# Control characters that no text file holds (tab, line ends and form feed are allowed)
_CONTROL = re.compile(r'[\x00-\x08\x0b\x0e-\x1f\x7f]')

_OPENING = {'「': '」', '『': '』', '（': '）'}
_CLOSING = {closing: opening for opening, closing in _OPENING.items()}
_SENTENCE_END = re.compile(r'[。！？」』）]+')
_AFTER_QUOTE = re.compile(r'\s*(?:[「『（]|$)')  # what follows a quote that ends its sentence

_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, zlib.error)


class AozoraTextError(ValueError):
    """The file is not a text that read_aozora can read; the message names it and says why."""


def read_aozora(path=None, encoding=None):
    """Return the text of an Aozora Bunko work, one paragraph per line.

    path: an Aozora text file or Aozora's zip of one (default: the bundled novel,
        BUNDLED_NOVEL). encoding: None reads UTF-8 and Shift_JIS (CP932), the encodings
        Aozora uses; name another (for example 'euc_jp') to read a file in it.
    The module docstring lists the cleaning rules. Raises AozoraTextError for a file that
    cannot be read or holds no text, and TypeError for a path that is not a path.
    """
    if path is None:
        path = BUNDLED_NOVEL
        if not path.is_file():
            raise AozoraTextError(
                f'同梱の小説 {path} がありません (the bundled novel is not there: it comes with '
                'a clone of the repository, not with an installed d2l_extras)。リポジトリを '
                'clone するか、path= に青空文庫のファイルを指定してください (clone the '
                'repository, or pass path= an Aozora text file or zip).'
            )
    if not isinstance(path, (str, Path)) and not hasattr(path, '__fspath__'):
        raise TypeError(f'path must be a file path (str or pathlib.Path), got {path!r:.80}')
    path = Path(path).expanduser()
    data = _read_bytes(path)
    if data.startswith(b'PK\x03\x04') or path.suffix.lower() == '.zip':
        name, data = _text_member(path, data)
        source = f'{path} の {name}'
    else:
        source = str(path)
    text = _decode(data, encoding, source)
    if text.lstrip()[:14].lower().startswith(('<!doctype html', '<html', '<?xml')):
        raise AozoraTextError(
            f'{source} は HTML です (HTML, not a text file)。青空文庫の図書カードから'
            'テキストファイル (ルビあり) の zip をダウンロードしてください (download the text '
            "edition, the zip on the work's card page, not the XHTML one)."
        )
    lines = _strip_credits(_strip_header(text.splitlines()))
    lines = [_clean(line) for line in lines]
    text = '\n'.join(line for line in lines if line)
    if not text:
        if data.strip():
            what = (
                '見出し、クレジット、注記のほかに本文がありません (nothing is left once the '
                'header, the credits and the markup are removed)'
            )
        else:
            what = '空のファイルです (the file is empty)'
        raise AozoraTextError(
            f'{source}: {what}。本文のある青空文庫のファイルを指定してください '
            '(give an Aozora text file that holds a work).'
        )
    return text


def split_sentences(paragraph):
    """Split one paragraph into sentences (a list of str); joined, they give the paragraph.

    A sentence ends after 。, ！ or ？ (a run of them, and the closing brackets right after).
    A quote 「…」 (or 『…』, （…）) that the sentence goes on after, as in 「もうよそう。勝手に
    するがいい」と云った。, is part of that one sentence: nothing inside it ends one. A quote
    that ends where the paragraph ends or the next quote opens stands for itself: it ends a
    sentence, and its own sentences are split, so 「はい」「いいえ」 is two and a speech of
    five sentences is five. A bracket without its partner (a speech that runs on into the
    next paragraph, as novels write long ones) is an ordinary character. Spaces around a
    sentence are stripped.
    """
    partners = _bracket_pairs(paragraph)
    embedded = {
        i
        for i, j in partners.items()
        if not _AFTER_QUOTE.match(paragraph, max(i, j) + 1)  # the quote and its partner
    }
    sentences, start, depth, i = [], 0, 0, 0
    while i < len(paragraph):
        if i in embedded:
            depth += 1 if paragraph[i] in _OPENING else -1
        elif depth == 0 and (paragraph[i] in '。！？' or i in partners and i > partners[i]):
            end = _SENTENCE_END.match(paragraph, i).end()
            sentences.append(paragraph[start:end].strip())
            start = i = end
            continue
        i += 1
    sentences.append(paragraph[start:].strip())
    return [sentence for sentence in sentences if sentence]


def paragraphs(text):
    """The paragraphs of text (one per line, as read_aozora returns), each a list of
    sentences (split_sentences); lines with nothing but spaces are skipped."""
    return [split_sentences(line) for line in text.splitlines() if line.strip()]


def read_paragraphs(path=None, encoding=None):
    """paragraphs(read_aozora(path, encoding)), checked to hold at least one paragraph of
    two sentences, the least that next-sentence pairs need; else AozoraTextError."""
    result = paragraphs(read_aozora(path, encoding))
    if not any(len(paragraph) >= 2 for paragraph in result):
        source = BUNDLED_NOVEL if path is None else Path(path).expanduser()
        raise AozoraTextError(
            f'{source}: 2 文以上の段落がありません (no paragraph has two sentences, which '
            f'next-sentence pairs need; {len(result)} paragraphs of one sentence each)。'
            '段落が 1 行ずつ、文が「。」で終わるか確かめてください (check that each paragraph '
            'is one line and that sentences end with 。).'
        )
    return result


def _read_bytes(path):
    try:
        status = path.stat()
        size = status.st_size
        if stat.S_ISDIR(status.st_mode):
            problem = 'ファイルではなくディレクトリです (a directory, not a file)'
        elif not stat.S_ISREG(status.st_mode):  # a pipe or a device could block or never end
            problem = '通常のファイルではありません (not a regular file)'
        elif size > _MAX_BYTES:
            problem = f'{size:,} バイトは大きすぎます (too large for a text: {size:,} bytes)'
        else:
            with open(path, 'rb') as file:
                return file.read(_MAX_BYTES + 1)[:_MAX_BYTES]
    except FileNotFoundError:
        problem = 'ファイルがありません (no such file)'
    except (OSError, ValueError) as error:  # ValueError: a NUL in the path
        problem = f'読めません (cannot read: {error})'
    raise AozoraTextError(
        f'{path} を読めません: {problem}。青空文庫のテキストファイル (.txt) か、その zip を'
        '指定してください (give an Aozora text file or its zip).'
    )


def _text_member(path, data):
    """The name and bytes of the one .txt in the zip data, read in memory with a size cap."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
            texts = [
                info
                for info in members
                if info.filename.lower().endswith('.txt') and '__MACOSX' not in info.filename
            ]
            if len(texts) != 1:
                names = ', '.join(repr(info.filename) for info in members[:5]) or 'none'
                raise AozoraTextError(
                    f'{path} は .txt を 1 つだけ含む zip ではありません (a zip should hold one '
                    f'.txt; it holds {len(texts)} among {len(members)} files: {names})。'
                    '青空文庫の図書カードにあるテキストファイルの zip を指定するか、読む .txt '
                    'を取り出してそのパスを指定してください (give the text zip of the card page, '
                    'or extract the .txt you want and give its path).'
                )
            info = texts[0]
            if info.file_size > _MAX_BYTES:
                raise AozoraTextError(
                    f'{path} の {info.filename} は大きすぎます (too large for a text: '
                    f'{info.file_size:,} bytes)。青空文庫のテキストの zip を指定してください '
                    '(give an Aozora text zip).'
                )
            with archive.open(info) as member:
                text = member.read(_MAX_BYTES + 1)  # a size the header understated stops here
    except AozoraTextError:
        raise
    except (*_ZIP_ERRORS, RuntimeError, ValueError) as error:  # RuntimeError: encrypted
        raise AozoraTextError(
            f'{path} を zip として読めません (not a readable zip: {error})。ダウンロードし'
            '直すか、.txt を取り出して指定してください (download it again, or extract the '
            '.txt and give its path).'
        ) from None
    if len(text) > _MAX_BYTES:
        raise AozoraTextError(f'{path} の {info.filename} は大きすぎます (too large for a text).')
    return info.filename, text


def _decode(data, encoding, source):
    """Decode data: as `encoding`, or else as UTF-8 or Shift_JIS; one clear error if not."""
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except (LookupError, TypeError):
            raise ValueError(
                f"encoding must be None or the name of a codec such as 'cp932', got {encoding!r}"
            ) from None
    guess = _guess_encoding(data)
    if encoding:
        candidates = [encoding]
    elif guess in ('EUC-JP', 'UTF-16'):
        candidates = []  # Python would read EUC-JP as Shift_JIS, giving nonsense
    else:
        candidates = ['utf-8', 'cp932']
    for codec in candidates:
        try:
            text = data.decode(codec).removeprefix('\ufeff')  # a UTF-8 byte order mark
        except UnicodeDecodeError:
            continue
        if not _CONTROL.search(text):
            return text
    expected = encoding or 'UTF-8 でも Shift_JIS でも (UTF-8 or Shift_JIS)'
    if guess is None:
        raise AozoraTextError(
            f'{source} は {expected} のテキストではありません (not a text in that encoding, '
            'nor in any that Japanese files often have: a binary file?)。青空文庫のテキスト'
            'ファイルか、その zip を指定してください (give an Aozora text file or its zip).'
        )
    if guess == 'Shift_JIS':
        hint = '既定の encoding=None で読むか (leave encoding=None, which reads it, '
    else:
        hint = f"encoding='{guess.lower().replace('-', '_')}' を指定するか (pass that, "
    iconv_from = 'CP932' if guess == 'Shift_JIS' else guess
    raise AozoraTextError(
        f'{source} は {expected} のテキストではありません (not a text in that encoding)。'
        f'{guess} のようです (it looks like {guess})。{hint}'
        f'or convert it to UTF-8), 例 (e.g.): iconv -f {iconv_from} -t UTF-8 FILE > FILE.utf8'
    )


def _guess_encoding(data):
    """The encoding that data looks like, among those Japanese files often have, or None."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return 'UTF-16'
    # EUC-JP before Shift_JIS: Shift_JIS text rarely decodes as EUC-JP, while EUC-JP text
    # often decodes as Shift_JIS (as half-width katakana).
    for codec, name in (('utf-8', 'UTF-8'), ('euc_jp', 'EUC-JP'), ('cp932', 'Shift_JIS')):
        try:
            if not _CONTROL.search(data.decode(codec)):
                return name
        except UnicodeDecodeError:
            pass
    return None


def _strip_header(lines):
    """Rule 1: the lines without the title block and the notation legend."""
    rules = [i for i, line in enumerate(lines[:_HEADER_LINES]) if _HYPHENS.fullmatch(line.strip())]
    if len(rules) >= 2 and rules[0] <= _TITLE_LINES:
        return lines[rules[1] + 1 :]
    for i, line in enumerate(lines[: _TITLE_LINES + 1]):
        if not line.strip():
            title_block = lines[:i]
            if title_block and not any('。' in title for title in title_block):
                return lines[i + 1 :]
            break
    return lines


def _strip_credits(lines):
    """Rule 2: the lines before the first one that starts with 底本："""
    for i, line in enumerate(lines):
        if _CREDITS.match(line.strip()):
            return lines[:i]
    return lines


def _clean(line):
    """Rules 3 to 8 on one line."""
    line = _GAIJI.sub(_gaiji, line)
    for _ in range(3):  # a note inside a note: the inner one goes first
        line = _NOTE.sub('', line)
    line = _RUBY.sub('', line).replace('｜', '')
    return _EUROPEAN.sub(r'\1', line).strip()


def _gaiji(match):
    """Rule 3: the character that ※［＃…］ describes, if the note gives its code."""
    note = match.group(1)
    if code := _UNICODE.search(note):
        value = int(code.group(1), 16)
        if value <= 0x10FFFF and not 0xD800 <= value <= 0xDFFF:
            return chr(value)
    if code := _JIS_CODE.search(note):
        plane, row, cell = (int(number) for number in code.groups())
        if 1 <= row <= 94 and 1 <= cell <= 94:
            # JIS X 0213 plane-row-cell as EUC-JIS-2004 bytes (plane 2 after 0x8F)
            encoded = (b'\x8f' if plane == 2 else b'') + bytes([0xA0 + row, 0xA0 + cell])
            try:
                return encoded.decode('euc_jis_2004')
            except UnicodeDecodeError:
                pass
    return '※'


def _bracket_pairs(paragraph):
    """{position: position of its partner} for the brackets in paragraph that have one."""
    stack, unclosed, partners = [], dict.fromkeys(_OPENING, 0), {}
    for i, char in enumerate(paragraph):
        if char in _OPENING:
            stack.append(i)
            unclosed[char] += 1
        elif char in _CLOSING and unclosed[_CLOSING[char]]:
            # Pair with the nearest opening of its kind; the ones above it stay unmatched.
            while True:
                j = stack.pop()
                unclosed[paragraph[j]] -= 1
                if paragraph[j] == _CLOSING[char]:
                    break
            partners[i], partners[j] = j, i
    return partners
