#!/usr/bin/python3
"""Writes the golden files of tests/model/vocab_compress_test.cc (tokenizer compression).

Run from anywhere: /usr/bin/python3 tests/model/data/make_vocab_golden.py. Outputs (checked in; CI
never runs Python):

  vocab_small_tokenizer.json  a small byte-level BPE tokenizer.json (GPT-2 byte-to-unicode table)
                              whose tokens exercise every step of the normaliser: partial UTF-8
                              sequences, accents, full-width forms, ligatures, whitespace runs, a
                              lone space, upper case, marks, added/special tokens.
  vocab_small_map.npy         int64 [raw_vocab]: raw id -> compressed id.
  vocab_small_keys.json       per raw id: the decoded text and the dedupe key (for readable test
                              failures).
  vocab_normalize_sweep.json  the normaliser applied to (almost) every BMP code point on its own:
                              {"changed": {"<cp>": output}, "skipped": [[lo, hi], ...]}; a code
                              point that is neither changed nor skipped maps to itself.

The Python below re-implements the reference (deepseek-ai/Engram engram_demo_v1.py,
CompressedTokenizer) with the standard library only, step for step as Hugging Face `tokenizers`
executes it (the package is not installable here):

  text = tokenizer.decode([id], skip_special_tokens=False)
      byte-level decoder: every char of the token through the inverse byte-to-unicode table (a
      token with a char outside the table contributes its own UTF-8 bytes), then UTF-8 decoded
      with invalid sequences replaced by U+FFFD. An added token decodes to its content.
  key = convert_ids_to_tokens(id) (the raw token string)   if U+FFFD is in text
        normalize(text) or, when that is empty, text         otherwise
  compressed id = order of first appearance of key, scanning raw ids upwards.

normalize = normalizers.Sequence([NFKC, NFD, StripAccents, Lowercase,
                                  Replace(Regex("[ \\t\\r\\n]+"), " "), Replace(Regex("^ $"), SENTINEL),
                                  Strip, Replace(SENTINEL, " ")]),  SENTINEL = U+E000:
  - StripAccents drops every char with General_Category Mark (Mn, Mc, Me): `tokenizers` uses
    unicode_normalization's is_combining_mark, which is the Mark category, not just Mn.
  - Lowercase maps each char on its own (Rust char::to_lowercase: full mapping, no final-sigma
    context), unlike str.lower() on a whole string.
  - Strip removes chars with the Unicode White_Space property (Rust char::is_whitespace), which is
    not str.strip()'s set (that one also strips U+001C..U+001F).
"""
import json
import os
import random
import re
import unicodedata

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SENTINEL = "\ue000"

# Unicode White_Space (PropList.txt); stable since Unicode 6.
WHITE_SPACE = set(
    [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
    + list(range(0x2000, 0x200B)))


def bytes_to_unicode():
    """GPT-2's byte -> printable char table (the ByteLevel pre-tokenizer and decoder)."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) +
          list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}


def to_token(data):
    """The byte-level token string for raw bytes (or a str, taken as UTF-8)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return "".join(BYTE_TO_CHAR[b] for b in data)


def strip_white_space(s):
    i, j = 0, len(s)
    while i < j and ord(s[i]) in WHITE_SPACE:
        i += 1
    while j > i and ord(s[j - 1]) in WHITE_SPACE:
        j -= 1
    return s[i:j]


def normalize(text):
    s = unicodedata.normalize("NFKC", text)
    s = unicodedata.normalize("NFD", s)
    s = "".join(c for c in s if not unicodedata.category(c).startswith("M"))
    s = "".join(c.lower() for c in s)
    s = re.sub(r"[ \t\r\n]+", " ", s)
    if s == " ":
        s = SENTINEL
    s = strip_white_space(s)
    return s.replace(SENTINEL, " ")


def decode(token, added):
    if added:
        return token
    if all(c in CHAR_TO_BYTE for c in token):
        data = bytes(CHAR_TO_BYTE[c] for c in token)
    else:
        data = token.encode("utf-8")
    return data.decode("utf-8", errors="replace")


def compression_key(token, added):
    text = decode(token, added)
    if "\ufffd" in text:
        return text, token
    norm = normalize(text)
    return text, (norm if norm else text)


def build_map(tokens, added_ids):
    key_to_new = {}
    out = np.empty(len(tokens), dtype=np.int64)
    rows = []
    for tid, tok in enumerate(tokens):
        text, key = compression_key(tok, tid in added_ids)
        nid = key_to_new.setdefault(key, len(key_to_new))
        out[tid] = nid
        rows.append({"id": tid, "token": tok, "text": text, "key": key, "compressed": nid})
    return out, rows


# Multi-byte tokens after the 256 single bytes, as UTF-8 text (str) or raw bytes.
WORD_TOKENS = [
    # Case and a leading space.
    "Hello", " Hello", "hello", " HELLO", " hello", "HELLO",
    # Accents (precomposed and combining), NFKC/NFD interplay.
    "café", " Café", "CAFÉ", "cafe", "cafe\u0301", "naïve", "Ångström", "\u212b", "Å",
    "ñ", "N\u0303", "Việt", "\u0301", "\u0301\u0302", "e\u0304\u0304\u0304o",
    # Full-width and other compatibility forms (NFKC).
    "ＡＢＣ", "ａｂｃ", "abc", "１２３", "123", "\u3000", "\u3000\u3000x", "ｶ", "カ",
    # Ligatures, enclosed and super/subscripts, units, roman numerals.
    "ﬁ", "fi", "ﬀ", "ﬃx", "Ⅻ", "xii", "①", "²", "₂", "㎏", "kg", "½", "™",
    # Whitespace: runs, a lone space, tabs, newlines, other White_Space chars.
    " ", "  ", "   ", "\t", "\n", "\r\n", " \t\n ", "\n\n", "\x0b", "\x0c", " \x0b", "\x0b ",
    "\xa0", "\u2028", "\u2009", "\u200b", "\x85", "a  b", "a\t\nb", "  a  ", "\x1c",
    "\x0bab", "\x0cab ", "\u1680b", "c\u2028", "\x85d\x85", "e\x0b\x0bf", "\u2028\ng", "\x1ch",
    # Upper case, special lowercase mappings and sigma without context.
    "İ", "I", "ß", "ẞ", "SS", "Σ", "ΟΣ", "ος", "σ", "ς", "ǅ", "DŽ", "Ǆ", "Ω", "\u2126",
    # Marks of every kind (Mn, Mc, Me) and scripts where StripAccents bites.
    "का", "क", "ि", "\u20dd", "a\u20dd", "한국", "ค่ะ", "ำ", "ا\u064b",
    # Private use sentinel inside a token, the replacement char itself.
    "a\ue000", "\ue000", "\ufffd", "x\ufffd",
    # Punctuation and tokens that transformers' clean-up would touch (it is off).
    " .", ".", " n't", "n't", "a .",
    # CJK and emoji (4-byte UTF-8).
    "中文", "你", "😀", " 😀",
]

# Partial UTF-8: prefixes of multi-byte characters, stray continuation bytes, bad sequences.
BYTE_TOKENS = [
    "é".encode()[:1], "你".encode()[:2], "你".encode()[1:], "😀".encode()[:3],
    "😀".encode()[1:], b"a\xc3", b"\xc3a", b"\xe4\xbd", b" \xe4\xbd", b"\xed\xa0\x80",
    b"\xc0\xaf", b"\xf5\x80\x80\x80", b"\xff\xfe",
]

# (content, special), appended after the model vocab; the first also sits in model.vocab with
# the same id (as GPT-2's "<|endoftext|>" does).
ADDED_TOKENS = [
    ("<|endoftext|>", True),
    ("<｜begin▁of▁sentence｜>", True),
    ("<think>", False),
    ("HELLO", False),  # decodes to its content: normalises onto "hello"
    ("ĠSpecial", False),  # content verbatim, even though every char is in the byte table
    ("  ", False),
]


def make_tokenizer():
    tokens = [BYTE_TO_CHAR[b] for b in BYTE_TO_CHAR]  # GPT-2 order: printable bytes first
    seen = set(tokens)
    for t in WORD_TOKENS + BYTE_TOKENS:
        tok = to_token(t)
        if tok not in seen:
            seen.add(tok)
            tokens.append(tok)
    vocab = {tok: i for i, tok in enumerate(tokens)}
    # The first added token is also a model token (same id).
    endoftext_id = len(tokens)
    tokens.append(ADDED_TOKENS[0][0])
    vocab[ADDED_TOKENS[0][0]] = endoftext_id
    added = [{"id": endoftext_id, "content": ADDED_TOKENS[0][0], "single_word": False,
              "lstrip": False, "rstrip": False, "normalized": False, "special": True}]
    for content, special in ADDED_TOKENS[1:]:
        added.append({"id": len(tokens), "content": content, "single_word": False,
                      "lstrip": False, "rstrip": False, "normalized": not special,
                      "special": special})
        tokens.append(content)
    # model.vocab in a shuffled order: readers must index by id, not by position.
    items = list(vocab.items())
    random.Random(7).shuffle(items)
    doc = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False,
                  "vocab": dict(items),
                  "merges": ["H e", "He l", "Hel l", "Hell o", "Ġ H"]},
    }
    added_ids = {a["id"] for a in added}
    return doc, tokens, added_ids


def sweep():
    """normalize() of each BMP code point alone (Hangul syllables sampled: their NFD is
    algorithmic). Skipped: surrogates, and code points unassigned in this Python's Unicode
    database (the C++ side may use a newer Unicode version)."""
    changed = {}
    skipped = []
    for cp in range(0x10000):
        c = chr(cp)
        unassigned = unicodedata.category(c) in ("Cn", "Cs")
        hangul_skip = 0xAC00 <= cp <= 0xD7A3 and (cp - 0xAC00) % 97 != 0
        if unassigned or hangul_skip:
            if skipped and skipped[-1][1] == cp - 1:
                skipped[-1][1] = cp
            else:
                skipped.append([cp, cp])
            continue
        out = normalize(c)
        if out != c:
            changed[str(cp)] = out
    return {"unicode_version": unicodedata.unidata_version, "changed": changed,
            "skipped": skipped}


def main():
    doc, tokens, added_ids = make_tokenizer()
    with open(os.path.join(HERE, "vocab_small_tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    lookup, rows = build_map(tokens, added_ids)
    np.save(os.path.join(HERE, "vocab_small_map.npy"), lookup)
    with open(os.path.join(HERE, "vocab_small_keys.json"), "w", encoding="utf-8") as f:
        json.dump({"raw_vocab_size": len(tokens), "compressed_vocab_size": int(lookup.max()) + 1,
                   "tokens": rows}, f, ensure_ascii=False, indent=0)
        f.write("\n")
    with open(os.path.join(HERE, "vocab_normalize_sweep.json"), "w", encoding="utf-8") as f:
        json.dump(sweep(), f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"raw {len(tokens)} -> compressed {int(lookup.max()) + 1}")


if __name__ == "__main__":
    main()
