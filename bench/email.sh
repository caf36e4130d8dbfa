#!/usr/bin/env bash
# E-mail throughput: real-shaped messages through smtp + iocextract.
#
# Not a test: it prints figures and judges nothing.
#
#   bash bench/email.sh
#
# 1. Builds BENCH_MESSAGES messages with Python's `email` package
#    (deterministic seed): RFC 2047 names and subjects, 2-5 Received
#    headers, a text body with (defanged) indicators, an HTML alternative
#    in about 60 %, 0-3 attachments taken from testdata/ (PE, archives,
#    Office, PDF, SWF, JS; up to ~250 KB each), a forwarded message/rfc822
#    in about 10 % and a winmail.dat in about 5 %.
# 2. `stoq run -P filedir -a smtp iocextract -C filedir` over them (all
#    extracted parts go through smtp and iocextract too), with 1 and 2
#    provider consumers: wall time, messages/s, MB/s, peak RSS. Skipped when
#    there is no release binary and BENCH_NO_BUILD=1.
# 3. In-process (no CLI, no connector): the ignored test
#    `cargo test --release -p stoq-plugins-email --test bench -- --ignored`
#    on the same messages: the parser and extractor alone, and a Stoq
#    engine with always_dispatch smtp + iocextract.
#
# Settings (environment):
#   BENCH_MESSAGES    number of messages (default 300)
#   BENCH_NO_BUILD=1  do not build target/release/stoq (the CLI part needs
#                     it; building the release CLI compiles yara-x and can
#                     take a long time)
#   BENCH_NO_CLI=1    skip the CLI part
#   STOQ_BIN          the stoq binary to use
set -euo pipefail
cd "$(dirname "$0")/.."

N=${BENCH_MESSAGES:-300}
STOQ=${STOQ_BIN:-target/release/stoq}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home" "$work/mail"

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== generating $N messages in $work/mail"
python3 - "$work/mail" "$N" testdata <<'PY'
import email.policy, os, random, sys
from email.message import EmailMessage
from email.utils import format_datetime
import datetime

out, n, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(20200101)
pool = []
for d, _, files in os.walk(root):
    if "/email" in d or "golden" in d:
        continue
    for f in sorted(files):
        p = os.path.join(d, f)
        if f.endswith((".json", ".md", ".yar")) or not (1000 < os.path.getsize(p) < 260_000):
            continue
        pool.append(p)
pool = sorted(set(pool))
names = {}
for p in pool:
    names.setdefault(os.path.basename(p), p)
pool = sorted(names.values())
tnef = open(os.path.join(root, "email", "two-files.tnef"), "rb").read() if os.path.exists(
    os.path.join(root, "email", "two-files.tnef")) else None
ctypes = {".exe": "application/x-msdownload", ".dll": "application/x-msdownload", ".zip": "application/zip",
          ".pdf": "application/pdf", ".doc": "application/msword", ".xls": "application/vnd.ms-excel",
          ".js": "application/javascript", ".7z": "application/x-7z-compressed", ".rar": "application/vnd.rar"}
words = ("invoice payment account please review attached document urgent confirm password update "
         "delivery shipment order quarterly report meeting schedule security notice").split()
people = [("Jörg Müller", "joerg@example.net"), ("Alice Example", "alice@example.com"),
          ("Zoë Test", "zoe@example.org"), ("IT Helpdesk", "helpdesk@corp.example.com"),
          ("Bob", "bob@example.org"), ("Ünal Çelik", "unal@example.com.tr")]

def ip():
    return "%d.%d.%d.%d" % (rng.randint(1, 223), rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254))

def text_body():
    lines = []
    for _ in range(rng.randint(3, 25)):
        lines.append(" ".join(rng.choice(words) for _ in range(rng.randint(5, 14))).capitalize() + ".")
    iocs = [f"hxxp://login-{rng.randint(1, 999)}[.]example[.]com/verify?id={rng.randint(1, 10**6)}",
            f"{ip().rsplit('.', 1)[0]}[.]{rng.randint(1, 254)}", f"support(at)evil{rng.randint(1, 99)}.example.net",
            "%032x" % rng.getrandbits(128), f"https://portal.example.org/{rng.randint(1, 999)}/login.php"]
    for ioc in rng.sample(iocs, rng.randint(0, len(iocs))):
        lines.insert(rng.randint(0, len(lines)), ioc)
    return "\n".join(lines) + "\n"

def message(i, depth=0):
    m = EmailMessage(policy=email.policy.SMTP)
    name, addr = rng.choice(people)
    m["From"] = f"{name} <{addr}>"
    m["To"] = ", ".join(f"{n} <{a}>" for n, a in rng.sample(people, rng.randint(1, 3)))
    if rng.random() < 0.3:
        m["Cc"] = rng.choice(people)[1]
    m["Subject"] = rng.choice(["Rechnung März", "Invoice", "Überweisung prüfen", "Re: meeting",
                               "Password expiry", "Delivery failed"]) + f" #{i}"
    m["Date"] = format_datetime(datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
                                + datetime.timedelta(minutes=i))
    m["Message-ID"] = f"<bench-{i}-{depth}@mail.example.com>"
    for _ in range(rng.randint(2, 5)):
        m["Received"] = f"from mx{rng.randint(1, 9)}.example.net ([{ip()}]) by mail.example.org with ESMTPS; " \
                        + m["Date"]
    m["X-Originating-IP"] = f"[{ip()}]"
    body = text_body()
    m.set_content(body)
    if rng.random() < 0.6:
        html = "<html><body>" + "".join(f"<p>{l}</p>" for l in body.splitlines()) + \
               f'<a href="http://track.example.com/c/{rng.randint(1, 10**6)}">link</a></body></html>'
        m.add_alternative(html, subtype="html")
    for _ in range(rng.choice([0, 1, 1, 1, 2, 2, 3])):
        p = rng.choice(pool)
        data = open(p, "rb").read()
        fn = os.path.basename(p)
        if rng.random() < 0.2:
            fn = "Übersicht_" + fn
        mt, st = ctypes.get(os.path.splitext(fn)[1], "application/octet-stream").split("/")
        m.add_attachment(data, maintype=mt, subtype=st, filename=fn)
    if depth == 0 and rng.random() < 0.1:
        m.add_attachment(message(i, depth + 1), filename="forwarded.eml")
    if depth == 0 and tnef and rng.random() < 0.05:
        m.add_attachment(tnef, maintype="application", subtype="ms-tnef", filename="winmail.dat")
    return m

total = 0
for i in range(n):
    b = message(i).as_bytes()
    total += len(b)
    with open(os.path.join(out, "m%05d.eml" % i), "wb") as f:
        f.write(b)
print(f"   {n} messages, {total} bytes ({total / n / 1024:.1f} KiB average), attachment pool: {len(pool)} files")
PY
bytes=$(du -sb "$work/mail" | cut -f1)

if [ -z "${BENCH_NO_CLI:-}" ]; then
    if [ -z "${BENCH_NO_BUILD:-}" ]; then
        echo "== building the release CLI (cargo build --release -p stoq-cli) ..."
        cargo build --release -q -p stoq-cli
    fi
    if [ -x "$STOQ" ]; then
        TIME=/usr/bin/time
        echo "== stoq: $("$STOQ" --version)  ($STOQ)"
        cat "$work"/mail/* > /dev/null
        for consumers in 1 2; do
            res="$work/results-$consumers"
            printf '[core]\nprovider_consumers = %s\nmax_queue = 100\nlog_dir =\n' "$consumers" > "$work/home/stoq.cfg"
            start=$(date +%s.%N)
            if [ -x "$TIME" ]; then
                STOQ_HOME="$work/home" "$TIME" -f "%M" -o "$work/rss.txt" \
                    "$STOQ" run -P filedir -a smtp iocextract -C filedir --log-level error \
                    --plugin-opts "filedir:source_dir=$work/mail" "filedir:results_dir=$res" filedir:skip_done=false
                rss=$(cat "$work/rss.txt")
            else
                STOQ_HOME="$work/home" "$STOQ" run -P filedir -a smtp iocextract -C filedir --log-level error \
                    --plugin-opts "filedir:source_dir=$work/mail" "filedir:results_dir=$res" filedir:skip_done=false
                rss=""
            fi
            end=$(date +%s.%N)
            saved=$(find "$res" -maxdepth 1 -type f ! -name '.*' | wc -l)
            awk -v n="$N" -v s="$(echo "$end - $start" | bc)" -v b="$bytes" -v k="$rss" -v r="$saved" -v c="$consumers" 'BEGIN {
                printf "   stoq run -a smtp iocextract, consumers=%d: %7.2f s %8.1f messages/s %6.2f MB/s", c, s, n / s, b / s / 1e6
                if (k != "") printf "  peak RSS %6.1f MiB", k / 1024
                printf "  (%d results)\n", r
            }'
        done
    else
        echo "== no stoq binary at $STOQ: CLI part skipped"
    fi
fi

echo "== in-process (cargo test --release -p stoq-plugins-email --test bench -- --ignored)"
STOQ_EMAIL_BENCH_DIR="$work/mail" cargo test --release -q -p stoq-plugins-email --test bench -- --ignored --nocapture 2>&1 \
    | grep -E '^   ' || true
