#!/bin/sh
#   Licensed under the Apache License, Version 2.0. Written for stoq-rs.
# Test plugin: a proper answer to hello, then "this is not json" for every
# call (the host must kill it and record a protocol error).
IFS= read -r hello || exit 0
printf '%s\n' '{"type":"ready","protocol":1,"classes":["worker"],"required_workers":[],"content":"file"}'
while IFS= read -r line; do
    printf '%s\n' 'this is not json'
done
exit 0
