#!/usr/bin/env python3
"""Build testdata/email/phish-macro.eml: a phishing-shaped e-mail carrying macro documents.

    python3 testdata/email/tools/make_phish.py [CORPUS_DIR]          build (and record the answers)
    python3 testdata/email/tools/make_phish.py [CORPUS_DIR] --check  compare with the files on disk
    python3 testdata/email/tools/make_phish.py --answers FILE.eml    print the reference answers

CORPUS_DIR defaults to the shared corpus next to the repository (../shared/corpus from the
repository root). The output is deterministic (fixed dates, boundaries, Message-ID and zip
timestamps): a re-run on the same corpus files with Python 3.11 gives byte-identical output.

The message, built with Python's `email` package (EmailMessage, policy.default):
  - From: a display name spoofing a bank's IT service desk; Reply-To and Return-Path elsewhere;
    a three-hop Received chain from 10.11.12.13 via 203.0.113.77 and 198.51.100.14;
    X-Originating-IP, X-Mailer; an invoice subject with a non-ASCII dash (RFC 2047).
  - multipart/alternative body, text/plain and text/html (quoted-printable), with a live URL
    (also as the HTML link target), a defanged URL, an IP (plain and defanged), e-mail addresses
    and the SHA-256 of the attached document.
  - attachment 1: office-ooxml/oleform-PR314.docm (VBA macros with an AutoExec form event;
    oletools test file, BSD-2-Clause) as "Invoice_INV-2020-0113.docm",
    application/vnd.ms-word.document.macroEnabled.12.
  - attachment 2: "Statement_Q4_2019.zip" (application/zip), built with zipfile (deflate, date
    2020-01-01 00:00:00), holding office-ole/excel4_sample_macro.xls (an Excel 4 / XLM macro
    sheet; oletools test file, BSD-2-Clause) as "Statement_Q4_2019.xls".
Every domain is under example.com/.net/.org and every IP in a documentation or private range
(RFC 2606, RFC 5737, RFC 1918): nothing here points at a real host.

The reference answers (`answers()`) are what independent tools report on the result: Python's
`email` package (headers, bodies, attachments), zipfile and olefile (the whole payload tree with
md5/sha1/sha256 of every payload, OLE stream listings) and oletools 0.60.2 (olevba module names,
XLM detection, MacroRaptor verdict). A build with olefile and oletools importable records them in
testdata/email/phish-macro.expected.json; crates/stoq-cli/tests/phish.rs computes them live with
`--answers` when $STOQ_TEST_PYTHON (or python3) can, and falls back to the recorded file.
"""
import email.policy
import hashlib
import io
import json
import os
import sys
import zipfile
from email.message import EmailMessage
from email.utils import formataddr

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, '..', 'phish-macro.eml'))
EXPECTED = os.path.normpath(os.path.join(HERE, '..', 'phish-macro.expected.json'))
DEFAULT_CORPUS = os.path.normpath(os.path.join(HERE, '..', '..', '..', '..', 'shared', 'corpus'))

DOCM = 'office-ooxml/oleform-PR314.docm'
XLS = 'office-ole/excel4_sample_macro.xls'
DOCM_NAME = 'Invoice_INV-2020-0113.docm'
DOCM_TYPE = ('application', 'vnd.ms-word.document.macroEnabled.12')
ZIP_NAME = 'Statement_Q4_2019.zip'
XLS_NAME = 'Statement_Q4_2019.xls'

DATE = 'Mon, 13 Jan 2020 08:41:07 +0000'
LIVE_URL = 'http://examplebank-secure.example.net/billing/INV-2020-0113/view.php?id=7781'
DEFANGED_URL = 'hxxps://docs-share[.]example[.]org/download/INV-2020-0113.zip'
IP = '203.0.113.77'
DEFANGED_IP = '198.51.100[.]14'


def rd(corpus, rel):
    with open(os.path.join(corpus, rel), 'rb') as f:
        return f.read()


def statement_zip(xls):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as z:
        zi = zipfile.ZipInfo(XLS_NAME, date_time=(2020, 1, 1, 0, 0, 0))
        zi.compress_type = zipfile.ZIP_DEFLATED
        zi.create_system = 3  # Unix, so the bytes do not depend on the host
        zi.external_attr = 0o644 << 16
        z.writestr(zi, xls)
    return buf.getvalue()


def build(corpus):
    docm = rd(corpus, DOCM)
    xls = rd(corpus, XLS)
    docm_sha256 = hashlib.sha256(docm).hexdigest()

    m = EmailMessage(policy=email.policy.default)
    # Received headers: newest (our MX) first, as a real chain reads.
    m['Return-Path'] = '<bounce-7781@mailer.example.net>'
    m['Received'] = ('from relay.example.net (relay.example.net [198.51.100.14]) by mx1.example.org '
                     '(Postfix) with ESMTPS id 4F2B1C0A7E for <j.doe@example.org>; ' + DATE)
    m['Received'] = ('from mailer.example.net (unknown [203.0.113.77]) by relay.example.net '
                     'with ESMTP id 0x7781; Mon, 13 Jan 2020 08:41:05 +0000')
    m['Received'] = ('from WIN-7Q2LK0P (unknown [10.11.12.13]) by mailer.example.net with ESMTPA; '
                     'Mon, 13 Jan 2020 08:41:03 +0000')
    m['X-Originating-IP'] = '[203.0.113.77]'
    m['X-Mailer'] = 'Microsoft Outlook 16.0'
    m['From'] = formataddr(('Example Bank IT Service Desk', 'it-servicedesk@examplebank.example.com'))
    m['Reply-To'] = formataddr(('Billing Department', 'billing-dept@mailbox.example.net'))
    m['To'] = formataddr(('John Doe', 'j.doe@example.org'))
    m['Subject'] = 'Invoice INV-2020-0113 overdue – action required'
    m['Date'] = DATE
    m['Message-ID'] = '<20200113084107.7781.phish-macro@examplebank.example.com>'

    m.set_content(
        'Dear customer,\n\n'
        'your invoice INV-2020-0113 (EUR 4,870.00) is overdue. To avoid a late fee, open the\n'
        'attached invoice and click "Enable Content" to display it, or view it online:\n\n'
        '    ' + LIVE_URL + '\n\n'
        'If the link does not work, the statement is also available at\n'
        '    ' + DEFANGED_URL + '\n'
        '(sign-in server ' + IP + ', backup ' + DEFANGED_IP + ').\n\n'
        'Document checksum (SHA-256): ' + docm_sha256 + '\n\n'
        'Questions? Reply to billing-dept@mailbox.example.net.\n\n'
        'Example Bank IT Service Desk\n')
    m.add_alternative(
        '<html><body>\n'
        '<p>Dear customer,</p>\n'
        '<p>your invoice <b>INV-2020-0113</b> (EUR 4,870.00) is overdue. To avoid a late fee, open the '
        'attached invoice and click <i>Enable Content</i> to display it, or '
        '<a href="' + LIVE_URL + '">view it on examplebank.example.com</a>.</p>\n'
        '<p>Statement: ' + DEFANGED_URL + ' (sign-in server ' + IP + ')</p>\n'
        '<p>Document checksum (SHA-256): ' + docm_sha256 + '</p>\n'
        '<p>Example Bank IT Service Desk</p>\n'
        '</body></html>\n',
        subtype='html')
    m.add_attachment(docm, maintype=DOCM_TYPE[0], subtype=DOCM_TYPE[1], filename=DOCM_NAME)
    m.add_attachment(statement_zip(xls), maintype='application', subtype='zip', filename=ZIP_NAME)

    n = 0
    for part in m.walk():
        if part.is_multipart():
            n += 1
            part.set_boundary('==stoq-phish-macro-%d==' % n)
    return m.as_bytes()


# ---------------------------------------------------------------- reference answers
def digests(data):
    return {'size': len(data), 'md5': hashlib.md5(data).hexdigest(), 'sha1': hashlib.sha1(data).hexdigest(),
            'sha256': hashlib.sha256(data).hexdigest()}


def email_answers(msg):
    """What Python's `email` package (policy.default) reports on the message."""
    def hdr(name):
        return str(msg[name]) if msg[name] is not None else None

    atts = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        if part.get_filename() or part.get_content_disposition() == 'attachment':
            payload = part.get_payload(decode=True)
            atts.append(dict({'filename': part.get_filename(), 'content_type': part.get_content_type(),
                              'disposition': part.get_content_disposition()}, **digests(payload)))
    return {
        'headers': [[k, str(v)] for k, v in msg.items()],
        'subject': hdr('subject'), 'from': hdr('from'), 'to': hdr('to'), 'cc': hdr('cc'),
        'reply_to': hdr('reply-to'), 'date': hdr('date'), 'message_id': hdr('message-id'),
        'received': [str(v) for v in msg.get_all('received', [])],
        'body': msg.get_body(preferencelist=('plain',)).get_content(),
        'body_html': msg.get_body(preferencelist=('html',)).get_content(),
        'attachments': atts,
    }


def is_ole(blob):
    # olefile.isOleFile() takes bytes shorter than 1536 for a file name
    return blob[:8] == b'\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1'


def is_zip(blob):
    # a zip file, not a zip somewhere inside other data: zipfile.is_zipfile() only looks for the
    # end record, so it also says yes for the xls's Workbook stream (a BIFF THEME record holds a
    # zipped theme), which neither libmagic nor stoQ types as a zip
    return blob[:4] == b'PK\x03\x04' and zipfile.is_zipfile(io.BytesIO(blob))


def tree_answers(data, msg):
    """Every payload stoQ should reach: the message, its attachments, the members of every zip
    (zipfile) and the streams of every OLE2 file (olefile), recursively. Each node names its
    parent by sha256 and says how it was found (`filename` of an attachment, `path` of a zip
    member, `index`/`path` of an OLE stream in olefile's listdir order). Also returns the OLE
    listings by sha256 and the payload bytes by sha256."""
    import olefile
    nodes, ole, blobs = [], {}, {}

    def visit(blob, parent, how):
        node = dict(digests(blob), parent=parent, **how)
        nodes.append(node)
        me = node['sha256']
        if me in blobs:
            return  # already expanded (stoQ keeps one payload per content)
        blobs[me] = blob
        if is_ole(blob):
            o = olefile.OleFileIO(blob)
            streams = o.listdir(streams=True, storages=False)
            ole[me] = {'root_clsid': o.root.clsid or '',
                       'streams': [{'path': '/'.join(s), 'size': o.get_size('/'.join(s))} for s in streams],
                       'storages': ['/'.join(s) for s in o.listdir(streams=False, storages=True)]}
            kids = [(i, '/'.join(s), o.openstream(s).read()) for i, s in enumerate(streams)]
            o.close()
            for i, path, kid in kids:
                visit(kid, me, {'index': i, 'path': path})
        elif is_zip(blob):
            with zipfile.ZipFile(io.BytesIO(blob)) as z:
                kids = [(i.filename, z.read(i)) for i in z.infolist() if not i.is_dir()]
            for name, kid in kids:
                visit(kid, me, {'path': name})

    nodes.append(dict(digests(data), parent=None))
    root = nodes[0]['sha256']
    for part in msg.iter_attachments():
        visit(part.get_payload(decode=True), root, {'filename': part.get_filename()})
    return nodes, ole, blobs


def macro_answers(nodes, blobs):
    """oletools' olevba (VBA modules, XLM) and mraptor verdict on every OLE2 or OOXML payload."""
    from oletools.mraptor import MacroRaptor
    from oletools.olevba import VBA_Parser
    out = {}
    for n in nodes:
        blob = blobs.get(n['sha256'])
        if n['parent'] is None or n['sha256'] in out:
            continue
        is_ooxml = False
        if is_zip(blob):
            with zipfile.ZipFile(io.BytesIO(blob)) as z:
                is_ooxml = '[Content_Types].xml' in z.namelist()
        if not (is_ole(blob) or is_ooxml):
            continue
        v = VBA_Parser(n.get('filename') or n.get('path') or 'payload', data=blob)
        r = {'type': v.type, 'vba_macros': bool(v.detect_vba_macros()), 'xlm_macros': bool(v.detect_xlm_macros())}
        if r['vba_macros']:
            macros = list(v.extract_all_macros())
            r['modules'] = [{'container': c if v.type == 'OpenXML' else None, 'stream': s, 'module': m}
                            for c, s, m, _ in macros]
            mr = MacroRaptor('\n'.join(x[3] for x in macros if isinstance(x[3], str)))
            mr.scan()
            r['mraptor'] = {'suspicious': mr.suspicious, 'autoexec': mr.autoexec, 'write': mr.write,
                            'execute': mr.execute, 'flags': mr.get_flags(), 'matches': mr.matches}
        v.close()
        out[n['sha256']] = r
    return out


def answers(data):
    """The reference answers for `data`. `tree`/`ole` need olefile and `macros` oletools; each is
    null when its package is missing (the Rust test then uses the recorded file)."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    out = {'tools': 'Python %d.%d.%d email (policy.default), zipfile, hashlib' % sys.version_info[:3],
           'email': email_answers(msg), 'tree': None, 'ole': None, 'macros': None}
    try:
        import olefile
        out['tools'] += ', olefile %s' % olefile.__version__
        nodes, out['ole'], blobs = tree_answers(data, msg)
    except ImportError:
        return out
    out['tree'] = nodes
    try:
        from oletools import olevba
        out['tools'] += ', oletools %s' % olevba.__version__
        out['macros'] = macro_answers(nodes, blobs)
    except ImportError:
        pass
    return out


def dumps(obj):
    return json.dumps(obj, indent=1, ensure_ascii=False) + '\n'


def main():
    argv = sys.argv[1:]
    if argv[:1] == ['--answers']:
        # for the tests: the answers for one file, computed now
        with open(argv[1], 'rb') as f:
            sys.stdout.write(dumps(answers(f.read())))
        return 0
    check = '--check' in argv
    args = [a for a in argv if not a.startswith('--')]
    corpus = args[0] if args else DEFAULT_CORPUS
    data = build(corpus)
    ans = answers(data)
    complete = ans['macros'] is not None
    if check:
        ok = True
        with open(OUT, 'rb') as f:
            ok &= f.read() == data
        if complete:
            with open(EXPECTED, encoding='utf-8') as f:
                ok &= json.load(f) == json.loads(dumps(ans))
        print('%s: %s' % (OUT, 'up to date' if ok else 'DIFFERS'))
        return 0 if ok else 1
    with open(OUT, 'wb') as f:
        f.write(data)
    print('built %s, %d bytes, sha256 %s' % (OUT, len(data), hashlib.sha256(data).hexdigest()))
    if complete:
        with open(EXPECTED, 'w', encoding='utf-8') as f:
            f.write(dumps(ans))
        print('wrote %s (%s)' % (EXPECTED, ans['tools']))
    else:
        print('olefile/oletools not importable: %s not rewritten' % EXPECTED, file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
