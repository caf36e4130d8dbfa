#!/usr/bin/env python3
"""Build the XML-wrapped VBA test documents of testdata/office/office-xml/
from office-ooxml/oleform-PR314.docm (oletools' test file, BSD-2-Clause):

- vba-flatopc.xml: the .docm as a Word 2007+ "Flat OPC" XML file: every
  part a pkg:part, XML parts inline, binary parts (vbaProject.bin) base64;
- vba-word2003.xml: a Word 2003 XML document whose w:binData
  "editdata.mso" holds the VBA project as an ActiveMime (MSO) container:
  the "ActiveMime" magic, a header giving the offset of the data, and the
  zlib-compressed OLE file;
- vba-activemime.mht: the same ActiveMime part in an MHTML (multipart/
  related) file, as Word's "single file web page" stores macros.

Deterministic (no dates, fixed boundaries): running it again gives the
same bytes. Run from testdata/office:  python3 tools/make_xml_vba.py
"""
import base64
import re
import struct
import zipfile
import zlib

SRC = "office-ooxml/oleform-PR314.docm"


def b64_lines(data):
    text = base64.b64encode(data).decode("ascii")
    return "\n".join(text[i:i + 76] for i in range(0, len(text), 76))


def content_types(z):
    xml = z.read("[Content_Types].xml").decode("utf-8")
    defaults = dict(re.findall(r'<Default Extension="([^"]+)" ContentType="([^"]+)"', xml))
    overrides = dict(re.findall(r'<Override PartName="([^"]+)" ContentType="([^"]+)"', xml))
    return defaults, overrides


def flat_opc(z):
    defaults, overrides = content_types(z)
    parts = []
    for name in z.namelist():
        if name == "[Content_Types].xml":
            continue
        data = z.read(name)
        pname = "/" + name
        ctype = overrides.get(pname) or defaults.get(name.rsplit(".", 1)[-1], "application/octet-stream")
        if name.endswith(".xml") or name.endswith(".rels"):
            body = re.sub(rb"^<\?xml[^>]*\?>\s*", b"", data).decode("utf-8")
            parts.append(f'<pkg:part pkg:name="{pname}" pkg:contentType="{ctype}">'
                         f"<pkg:xmlData>{body}</pkg:xmlData></pkg:part>")
        else:
            parts.append(f'<pkg:part pkg:name="{pname}" pkg:contentType="{ctype}" pkg:compression="store">'
                         f"<pkg:binaryData>{b64_lines(data)}</pkg:binaryData></pkg:part>")
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<?mso-application progid="Word.Document"?>\n'
            '<pkg:package xmlns:pkg="http://schemas.microsoft.com/office/2006/xmlPackage">'
            + "".join(parts) + "</pkg:package>\n").encode("utf-8")


def active_mime(ole):
    """An ActiveMime container: magic, a 0x32-byte header whose u16 at 0x1E
    plus 46 is the data offset, the uncompressed size, then zlib data."""
    header = bytearray(b"ActiveMime\x00\x00\x01\xf0\x04\x00\x00\x00\xff\xff\xff\xff")
    header += b"\x00" * (0x1E - len(header))
    header += struct.pack("<H", 0x32 - 46)
    header += b"\x00" * (0x2E - len(header))
    header += struct.pack("<I", len(ole))
    assert len(header) == 0x32
    return bytes(header) + zlib.compress(ole, 9)


def word2003(mso):
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<?mso-application progid="Word.Document"?>\n'
            '<w:wordDocument xmlns:w="http://schemas.microsoft.com/office/word/2003/wordml"'
            ' xmlns:wx="http://schemas.microsoft.com/office/word/2003/auxHint"'
            ' w:macrosPresent="yes" xml:space="preserve">'
            f'<w:binData w:name="editdata.mso">{b64_lines(mso)}</w:binData>'
            '<w:body><w:p><w:r><w:t>Enable content to see this document.</w:t></w:r></w:p></w:body>'
            "</w:wordDocument>\n").encode("utf-8")


def mht(mso):
    boundary = "----=_NextPart_01D00000.0000000"
    html = ("<html xmlns:o='urn:schemas-microsoft-com:office:office'><head>"
            "<link rel=Edit-Time-Data href=\"editdata.mso\"></head>"
            "<body><p>Enable content to see this document.</p></body></html>")
    return ("MIME-Version: 1.0\r\n"
            f'Content-Type: multipart/related; boundary="{boundary}"\r\n\r\n'
            "This document is a Single File Web Page, also known as a Web Archive file.\r\n\r\n"
            f"--{boundary}\r\n"
            "Content-Location: file:///C:/doc.htm\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n"
            'Content-Type: text/html; charset="us-ascii"\r\n\r\n'
            f"{html}\r\n\r\n"
            f"--{boundary}\r\n"
            "Content-Location: file:///C:/doc_files/editdata.mso\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            "Content-Type: application/x-mso\r\n\r\n"
            + b64_lines(mso).replace("\n", "\r\n") + "\r\n\r\n"
            f"--{boundary}--\r\n").encode("ascii")


def main():
    z = zipfile.ZipFile(SRC)
    ole = z.read("word/vbaProject.bin")
    mso = active_mime(ole)
    for name, data in [("vba-flatopc.xml", flat_opc(z)),
                       ("vba-word2003.xml", word2003(mso)),
                       ("vba-activemime.mht", mht(mso))]:
        with open("office-xml/" + name, "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
