"""Tests of d2l_extras.aozora: the bundled novel, each cleaning rule, the sentence rule, Aozora's
Shift_JIS zip, and one clear error for each kind of bad input."""

import hashlib
import io
import os
import time
import zipfile

import pytest

from booktools.paths import DATA_DIR
from d2l_extras import aozora
from d2l_extras.aozora import AozoraTextError, paragraphs, read_aozora, split_sentences

NOVEL = DATA_DIR / 'aozora' / 'wagahaiwa_nekodearu.txt'

HEADER = (
    '吾輩は猫である\r\n夏目漱石\r\n'
    '-------------------------------------------------------\r\n'
    '【テキスト中に現れる記号について】\r\n'
    '《》：ルビ\r\n（例）吾輩《わがはい》は猫である\r\n'
    '-------------------------------------------------------\r\n'
)
CREDITS = '底本：「夏目漱石全集1」ちくま文庫、筑摩書房\r\n入力：柴田卓治\r\n校正：渡部峰子\r\n'
BODY = '　吾輩は猫である。名前はまだ無い。\r\n　どこで生れたかとんと見当がつかぬ。\r\n'


def aozora_text(body=BODY):
    """A small text laid out as Aozora Bunko's files are: header, body, credits."""
    return HEADER + body + CREDITS


def read_text(tmp_path, text, codec='utf-8', name='work.txt'):
    path = tmp_path / name
    path.write_bytes(text.encode(codec))
    return read_aozora(path)


def make_zip(members):
    """A zip (bytes) of members: {name: bytes}."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def cp932_as_aozora_writes_it(text):
    """The text in CP932, as Aozora's zips hold it. This copy of the novel writes three
    characters as the JIS mapping does; CP932 has them at other code points."""
    return text.translate(str.maketrans('—−〜', '―－～')).encode('cp932')


def failure(path, **kwargs):
    """The message of the AozoraTextError that read_aozora(path) raises; it names the file."""
    with pytest.raises(AozoraTextError) as raised:
        read_aozora(path, **kwargs)
    message = str(raised.value)
    assert str(path) in message
    return message


# ------------------------------------------------------------------ the bundled novel


def test_the_repository_carries_the_novel_with_its_checksum_and_credits():
    data = NOVEL.read_bytes()
    sums = (NOVEL.parent / 'SHA256SUMS').read_text().split()
    assert dict(zip(sums[1::2], sums[::2]))[NOVEL.name] == hashlib.sha256(data).hexdigest()
    assert aozora.BUNDLED_NOVEL == NOVEL
    text = data.decode('utf-8')
    assert '入力：柴田卓治' in text and '青空文庫' in text.splitlines()[-1]  # Aozora's credits
    readme = (NOVEL.parent / 'README.md').read_text()
    assert '入力：柴田卓治' in readme and 'public domain' in readme


def test_bundled_novel_statistics(capsys):
    text = read_aozora()
    paras = paragraphs(text)
    sentences = [sentence for paragraph in paras for sentence in paragraph]
    characters = len(text.replace('\n', ''))
    with capsys.disabled():
        print(
            f'\n吾輩は猫である: {characters:,} characters, {len(paras):,} paragraphs, '
            f'{len(sentences):,} sentences, '
            f'{sum(len(p) >= 2 for p in paras):,} paragraphs of two or more'
        )
    assert (characters, len(paras), len(sentences)) == (318_455, 2_256, 9_088)
    assert paras[0] == ['一']  # the first chapter heading
    assert paras[1] == ['吾輩は猫である。', '名前はまだ無い。']
    assert paras[-1][-1] == 'ありがたいありがたい。'
    for mark in '《》｜［］＃〔〕※':
        assert mark not in text
    assert '底本' not in text and '【テキスト中に現れる記号について】' not in text
    assert '主人はまだ譃《いつ》わられた'.replace('《いつ》', '') in text  # ※［＃…2-88-74］
    assert aozora.read_paragraphs() == paras


def test_missing_bundled_novel_says_where_it_comes_from(monkeypatch, tmp_path):
    monkeypatch.setattr(aozora, 'BUNDLED_NOVEL', tmp_path / 'wagahaiwa_nekodearu.txt')
    with pytest.raises(AozoraTextError) as raised:
        read_aozora()
    message = str(raised.value)
    assert str(tmp_path / 'wagahaiwa_nekodearu.txt') in message
    assert 'clone' in message and 'path=' in message


# ------------------------------------------------------------------ the cleaning rules


def test_header_is_removed(tmp_path):
    assert (
        read_text(tmp_path, aozora_text())
        == '吾輩は猫である。名前はまだ無い。\nどこで生れたかとんと見当がつかぬ。'
    )


def test_title_block_without_legend_is_removed(tmp_path):
    assert read_text(tmp_path, '羅生門\n芥川龍之介\n\n　ある日の暮方の事である。\n') == (
        'ある日の暮方の事である。'
    )


def test_text_without_header_is_kept_whole(tmp_path):
    text = '　吾輩は猫である。\n\n　名前はまだ無い。\n'
    assert read_text(tmp_path, text) == '吾輩は猫である。\n名前はまだ無い。'


def test_credits_are_removed(tmp_path):
    text = read_text(tmp_path, aozora_text() + '［＃本文終わり］\n')
    assert text.endswith('見当がつかぬ。')
    assert '底本' not in text and '入力' not in text


def test_ruby_is_removed(tmp_path):
    body = '　吾輩《わがはい》は猫である。煙草《たばこ》というもの。\n'
    assert read_text(tmp_path, aozora_text(body)) == '吾輩は猫である。煙草というもの。'


def test_ruby_start_mark_is_removed(tmp_path):
    body = '　一番｜獰悪《どうあく》な種族であった。\n'
    assert read_text(tmp_path, aozora_text(body)) == '一番獰悪な種族であった。'


def test_notes_are_removed(tmp_path):
    body = (
        '［＃８字下げ］一［＃「一」は中見出し］\n'
        '［＃ここから２字下げ］\n'
        '　御めえ［＃「御めえ」に傍点］は一体何だと云った。\n'
        '［＃ここで字下げ終わり］\n'
    )
    assert read_text(tmp_path, aozora_text(body)) == '一\n御めえは一体何だと云った。'


def test_characters_outside_jis_x_0208_are_restored_from_their_notes(tmp_path):
    body = (
        '　主人はまだ※［＃「言＋墟のつくり」、第4水準2-88-74］わられた。'
        'フ※［＃小書き片仮名ヒ、1-6-84］リーシャス。'
        '※［＃「木＋吶のつくり」、U+6799］と※［＃「（口＋口）／田」］。\n'
    )
    assert read_text(tmp_path, aozora_text(body)) == '主人はまだ譃わられた。フㇶリーシャス。枙と※。'


def test_brackets_around_european_text_are_removed(tmp_path):
    body = '「何だって？　〔Quid aliud est mulier〕……こりゃ羅甸語じゃないか」\n'
    assert read_text(tmp_path, aozora_text(body)) == (
        '「何だって？　Quid aliud est mulier……こりゃ羅甸語じゃないか」'
    )


def test_indentation_and_empty_lines_go_and_paragraphs_stay(tmp_path):
    body = '　一つ目の段落。\r\n\r\n　　\r\n［＃改ページ］\r\n二つ目の段落。　\r\n'
    assert read_text(tmp_path, aozora_text(body)) == '一つ目の段落。\n二つ目の段落。'


# ------------------------------------------------------------------ sentences


@pytest.mark.parametrize(
    'paragraph, sentences',
    [
        ('吾輩は猫である。名前はまだ無い。', ['吾輩は猫である。', '名前はまだ無い。']),
        ('猫か？　そうだ！！', ['猫か？', 'そうだ！！']),
        ('見当がつかぬ。最後の文には句点が無い', ['見当がつかぬ。', '最後の文には句点が無い']),
        (  # a quote the sentence goes on after is part of it, whatever it holds
            '「もうよそう。勝手にするがいい」と、抵抗しない事にした。次。',
            ['「もうよそう。勝手にするがいい」と、抵抗しない事にした。', '次。'],
        ),
        ('「はい」「いいえ」', ['「はい」', '「いいえ」']),  # each quote its own
        ('「いや。そうだ。」と云った。', ['「いや。そうだ。」と云った。']),
        (  # a quote that ends the paragraph is split into its own sentences
            '主人は云う。「君、猫だ。名前はまだ無い」',
            ['主人は云う。', '「君、猫だ。', '名前はまだ無い」'],
        ),
        ('「『吾輩。猫。』と書いた」と云う。', ['「『吾輩。猫。』と書いた」と云う。']),
        ('ある事（これは注。）を云う。次。', ['ある事（これは注。）を云う。', '次。']),
        (  # an unmatched bracket: a speech that ran on from the last paragraph
            'それからこうです。」と迷亭。続き。',
            ['それからこうです。」', 'と迷亭。', '続き。'],
        ),
        ('「閉じない。ままの。', ['「閉じない。', 'ままの。']),
        ('一', ['一']),
        ('', []),
    ],
)
def test_split_sentences(paragraph, sentences):
    assert split_sentences(paragraph) == sentences
    assert ''.join(sentences) == paragraph.replace('　', '')


def test_paragraphs_are_lines_of_sentences():
    assert paragraphs('甲。乙。\n  \n丙') == [['甲。', '乙。'], ['丙']]


# ------------------------------------------------------------------ other Aozora files


def test_shift_jis_zip_as_aozora_distributes_it(tmp_path):
    novel = NOVEL.read_bytes().decode('utf-8')
    path = tmp_path / '789_ruby_5639.zip'
    path.write_bytes(make_zip({'wagahaiwa_nekodearu.txt': cp932_as_aozora_writes_it(novel)}))
    expected = read_aozora().translate(str.maketrans('—−〜', '―－～'))
    assert read_aozora(path) == expected
    assert read_aozora(str(path)) == expected


@pytest.mark.parametrize('codec', ['cp932', 'utf-8', 'utf-8-sig'])
def test_text_file_in_shift_jis_or_utf8(tmp_path, codec):
    text = aozora_text('　吾輩《わがはい》は猫である。～①\n')
    assert read_text(tmp_path, text, codec) == '吾輩は猫である。～①'


def test_other_encodings_when_named(tmp_path):
    path = tmp_path / 'work.txt'
    path.write_bytes(aozora_text().encode('euc_jp'))
    assert read_aozora(path, encoding='euc_jp').startswith('吾輩は猫である。')


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    'codec, encoding, expected',
    [
        ('cp932', 'utf-8', ['Shift_JIS', 'encoding=None', 'iconv -f CP932']),
        ('euc_jp', 'utf-8', ['EUC-JP', "encoding='euc_jp'", 'iconv -f EUC-JP']),
        ('euc_jp', None, ['EUC-JP', "encoding='euc_jp'"]),  # not misread as Shift_JIS
        ('utf-16', None, ['UTF-16', "encoding='utf_16'"]),
    ],
)
def test_file_in_another_encoding_says_which_and_what_to_do(tmp_path, codec, encoding, expected):
    path = tmp_path / 'work.txt'
    path.write_bytes(aozora_text().encode(codec))
    message = failure(path, encoding=encoding)
    for words in expected:
        assert words in message


def test_bytes_in_no_known_encoding(tmp_path):
    path = tmp_path / 'picture.txt'
    path.write_bytes(b'\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR' + bytes(range(256)))
    assert 'binary file' in failure(path)


def test_html_edition(tmp_path):
    path = tmp_path / '789_14547.html'
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<html><body>吾輩</body></html>')
    assert 'HTML' in failure(path)


@pytest.mark.parametrize(
    'members, expected',
    [
        ({'789.html': b'<html></html>', 'neko.png': b'\x89PNG'}, 'holds 0 among 2 files'),
        ({'a.txt': b'a', 'b/b.TXT': b'b'}, 'holds 2 among 2 files'),
        ({}, 'holds 0 among 0 files: none'),
    ],
)
def test_zip_without_one_txt(tmp_path, members, expected):
    path = tmp_path / 'work.zip'
    path.write_bytes(make_zip(members))
    message = failure(path)
    assert expected in message and 'extract the .txt' in message


def test_zip_that_is_not_one(tmp_path):
    path = tmp_path / 'work.zip'
    path.write_bytes(b'<html>404 Not Found</html>')
    assert 'not a readable zip' in failure(path)


def test_encrypted_zip(tmp_path):
    data = bytearray(make_zip({'work.txt': aozora_text().encode('cp932')}))
    for signature, flags_at in ((b'PK\x03\x04', 6), (b'PK\x01\x02', 8)):  # local, central
        data[data.index(signature) + flags_at] |= 0x01
    path = tmp_path / 'work.zip'
    path.write_bytes(bytes(data))
    assert 'encrypted' in failure(path)


def test_zip_member_over_the_size_cap_is_not_read(monkeypatch, tmp_path):
    path = tmp_path / 'work.zip'
    path.write_bytes(make_zip({'work.txt': b'\x82\xa0' * 50_000}))  # 100 kB, compresses well
    monkeypatch.setattr(aozora, '_MAX_BYTES', 10_000)
    assert 'too large' in failure(path)


def test_zip_member_names_are_only_names(tmp_path):
    path = tmp_path / 'work.zip'
    path.write_bytes(make_zip({'../../evil.txt': aozora_text().encode('cp932')}))
    assert read_aozora(path).startswith('吾輩は猫である。')
    assert sorted(os.listdir(tmp_path)) == ['work.zip']  # nothing was extracted


@pytest.mark.parametrize(
    'content, expected',
    [
        (b'', 'the file is empty'),
        (b' \r\n\r\n', 'the file is empty'),
        ((HEADER + CREDITS).encode(), 'nothing is left'),
        (
            aozora_text('［＃８字下げ］［＃ここで字下げ終わり］\n《るび》｜\n').encode(),
            'nothing is left',
        ),
    ],
    ids=['empty', 'blank', 'header-and-credits', 'markup-only'],
)
def test_empty_or_markup_only_text(tmp_path, content, expected):
    path = tmp_path / 'work.txt'
    path.write_bytes(content)
    assert expected in failure(path)


def test_no_paragraph_of_two_sentences(tmp_path):
    path = tmp_path / 'work.txt'
    path.write_text(aozora_text('　吾輩は猫である。\n　名前はまだ無い。\n「はい」\n'))
    assert read_aozora(path)  # a text, only not one for next-sentence pairs
    with pytest.raises(AozoraTextError) as raised:
        aozora.read_paragraphs(path)
    message = str(raised.value)
    assert str(path) in message and 'no paragraph has two sentences' in message
    assert '3 paragraphs of one sentence each' in message


def test_missing_file_and_directory(tmp_path):
    assert 'no such file' in failure(tmp_path / 'missing.txt')
    assert 'a directory' in failure(tmp_path)


def test_pipe_is_refused_at_once(tmp_path):
    path = tmp_path / 'fifo.txt'
    os.mkfifo(path)  # opening it to read would wait for a writer forever
    assert 'not a regular file' in failure(path)


def test_file_over_the_size_cap(monkeypatch, tmp_path):
    monkeypatch.setattr(aozora, '_MAX_BYTES', 100)
    path = tmp_path / 'work.txt'
    path.write_text(aozora_text())
    assert 'too large' in failure(path)


def test_bad_arguments():
    with pytest.raises(TypeError, match='path must be a file path'):
        read_aozora(42)
    with pytest.raises(ValueError, match='encoding must be None or the name of a codec'):
        read_aozora(NOVEL, encoding='klingon')


@pytest.mark.parametrize('mark', ['《', '［＃', '「', '※［＃', '〔', '「」'])
def test_unclosed_markup_takes_linear_time(tmp_path, mark):
    # A megabyte of openings that never close: each pattern stops at the next opening.
    started = time.monotonic()
    body = '　' + (mark + 'あ') * (2**20 // (len(mark) + 1) // 3) + '。終わり。\n'
    text = read_text(tmp_path, aozora_text(body))
    split_sentences(text)
    assert time.monotonic() - started < 10
