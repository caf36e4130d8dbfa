#!/usr/bin/env python3
"""Build encrypted/dde-encrypted-1234.doc: a Word 97-2003 document with a
DDEAUTO field, RC4-encrypted with the password "1234" (one of the short
passwords oletools tries by default).

It starts from encrypted/encrypted.doc (oletools' test file, BSD-2-Clause,
RC4 with the password "encrypted"):

1. decrypt it with msoffcrypto-tool;
2. overwrite its one text run ("Encrypted Test File...") in place, same
   length, with a DDEAUTO field (begin 0x13, instruction, separator 0x14,
   end 0x15), the way msodde finds fields;
3. encrypt again with a new salt and verifier for "1234" ([MS-OFFCRYPTO]
   2.3.6: MD5 key derivation, RC4 re-keyed every 512 bytes from the start
   of each stream; the first 68 bytes of WordDocument and the encryption
   header at the start of 1Table stay clear).

Every stream keeps its size, so olefile rewrites them in a copy of the
original file. Deterministic (fixed salt and verifier).
Needs the test venv (msoffcrypto-tool, olefile). Run from testdata/office:
    ../../target/pyenv/bin/python tools/make_encrypted_dde_doc.py
"""
import hashlib
import io
import shutil
import struct

import msoffcrypto
import olefile

SRC = "encrypted/encrypted.doc"
OUT = "encrypted/dde-encrypted-1234.doc"
PASSWORD = "1234"
SALT = bytes(range(0x10, 0x20))
VERIFIER = b"stoq test vector"
FIELD = b'\x13DDEAUTO c:\\Windows\\cmd.exe "/k calc.exe" \x14\x15'
FIB_CLEAR = 68
HEADER = 52  # version 1.1, salt, verifier, verifier hash


def rc4(key, data):
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) & 0xFF
        s[i], s[j] = s[j], s[i]
    out = bytearray()
    i = j = 0
    for b in data:
        i = (i + 1) & 0xFF
        j = (j + s[i]) & 0xFF
        s[i], s[j] = s[j], s[i]
        out.append(b ^ s[(s[i] + s[j]) & 0xFF])
    return bytes(out)


def block_key(block):
    h0 = hashlib.md5(PASSWORD.encode("utf-16-le")).digest()[:5]
    h1 = hashlib.md5((h0 + SALT) * 16).digest()[:5]
    return hashlib.md5(h1 + struct.pack("<I", block)).digest()


def crypt(data):
    """RC4 over a whole stream, a new key every 512 bytes."""
    return b"".join(
        rc4(block_key(n), data[off:off + 512])
        for n, off in enumerate(range(0, len(data), 512))
    )


def main():
    of = msoffcrypto.OfficeFile(open(SRC, "rb"))
    of.load_key(password="encrypted")
    buf = io.BytesIO()
    of.decrypt(buf)
    plain = olefile.OleFileIO(io.BytesIO(buf.getvalue()))
    word = bytearray(plain.openstream("WordDocument").read())
    table = plain.openstream("1Table").read()

    text = b"Encrypted Test File\r\rNo other contents, sorry (\r"
    at = word.index(text)
    assert len(FIELD) <= len(text) - 1, len(FIELD)
    word[at:at + len(text)] = FIELD + b" " * (len(text) - 1 - len(FIELD)) + b"\r"

    original = olefile.OleFileIO(SRC)
    enc_word = original.openstream("WordDocument").read()
    enc_table = original.openstream("1Table").read()
    assert struct.unpack_from("<I", enc_word, 0x0E)[0] == HEADER

    key0 = block_key(0)
    both = rc4(key0, VERIFIER + hashlib.md5(VERIFIER).digest())
    header = struct.pack("<HH", 1, 1) + SALT + both
    assert len(header) == HEADER

    new_word = enc_word[:FIB_CLEAR] + crypt(bytes(word))[FIB_CLEAR:]
    new_table = header + crypt(table)[HEADER:]
    assert len(new_word) == len(enc_word) and len(new_table) == len(enc_table)

    shutil.copyfile(SRC, OUT)
    out = olefile.OleFileIO(OUT, write_mode=True)
    out.write_stream("WordDocument", new_word)
    out.write_stream("1Table", new_table)
    out.close()


if __name__ == "__main__":
    main()
