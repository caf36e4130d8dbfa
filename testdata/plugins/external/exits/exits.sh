#!/bin/sh
#   Licensed under the Apache License, Version 2.0. Written for stoq-rs.
# Test plugin: a proper answer to hello, then exit status 7 at the first
# call, without answering it.
IFS= read -r hello || exit 0
printf '%s\n' '{"type":"ready","protocol":1,"classes":["worker"],"required_workers":[],"content":"file"}'
IFS= read -r call || exit 0
exit 7
