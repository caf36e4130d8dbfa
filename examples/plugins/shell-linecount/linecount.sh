#!/bin/sh
#   Licensed under the Apache License, Version 2.0. Written for stoq-rs.
#
# linecount: a stoq worker in POSIX shell, speaking the external plugin
# protocol (docs/PLUGIN_PROTOCOL.md) in file mode: the host hands over each
# payload as a file path, so no binary data crosses this script's stdin.
#
# No JSON parser is needed for the few fields used here; sed picks them out
# of the header line:
#   * the first message is always hello, every later one a call;
#   * a call's id and method: the host writes "type":"call","id":N,
#     "method":"M" next to each other (nested data never holds that triple);
#   * the content file: the first "content":{"path":"..."} of the line,
#     which is the payload's (the payload comes before the request, and its
#     content before its results).
# Nothing but protocol messages may go to stdout; diagnostics go to stderr.

# call_field N: the id (N=1) or the method (N=2) of the call in $line
call_field() {
    printf '%s\n' "$line" |
        sed -n "s/.*\"type\" *: *\"call\" *, *\"id\" *: *\([0-9][0-9]*\) *, *\"method\" *: *\"\([a-z_]*\)\".*/\\$1/p"
}

# content_path: the payload's content file in $line
content_path() {
    printf '%s\n' "$line" |
        sed -n 's/"content" *: *{ *"path" *: *"/@@PATH@@/; s/.*@@PATH@@\([^"]*\)".*/\1/p'
}

# skip_blobs: read past the blobs a header announces (none in file mode,
# but a robust plugin does not get out of step if some arrive). The host
# writes "blobs" last in the header.
skip_blobs() {
    sizes=$(printf '%s\n' "$line" | sed -n 's/.*"blobs" *: *\[\([0-9, ]*\)\] *} *$/\1/p' | tr ',' ' ')
    for n in $sizes; do
        dd bs=1 count="$n" of=/dev/null 2>/dev/null
    done
}

# Start-up: answer hello, asking for file mode.
IFS= read -r line || exit 0
case $line in
*'"hello"'*) ;;
*)
    printf '%s\n' '{"type":"fatal","error":"linecount: expected a hello message"}'
    exit 2
    ;;
esac
printf '%s\n' '{"type":"ready","protocol":1,"classes":["worker"],"required_workers":[],"content":"file"}'

# Calls, until the host closes stdin.
while IFS= read -r line; do
    skip_blobs
    id=$(call_field 1)
    method=$(call_field 2)
    if [ -z "$id" ]; then
        echo "linecount: ignoring a message that is not a call: $line" >&2
        continue
    fi
    path=$(content_path)
    if [ "$method" != scan ]; then
        printf '{"type":"raise","id":%s,"error":"linecount does not implement %s"}\n' "$id" "$method"
    elif [ -z "$path" ] || [ ! -r "$path" ]; then
        printf '{"type":"raise","id":%s,"error":"no readable content file"}\n' "$id"
    else
        # $(( )) drops the padding some wc implementations print
        lines=$(( $(wc -l < "$path") ))
        bytes=$(( $(wc -c < "$path") ))
        printf '{"type":"return","id":%s,"value":{"results":{"lines":%s,"bytes":%s}}}\n' "$id" "$lines" "$bytes"
    fi
done
# End of input: the host wants us gone.
exit 0
