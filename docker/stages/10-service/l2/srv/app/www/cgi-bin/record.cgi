#!/bin/sh
# POST /cgi-bin/record.cgi: stores the request body as one record.
data=/srv/app/data/records.txt
if [ "$REQUEST_METHOD" != POST ]; then
    printf 'Status: 405 Method Not Allowed\r\nContent-Type: text/plain\r\n\r\nPOST a record\n'
    exit 0
fi
body=$(head -c "${CONTENT_LENGTH:-0}")
mkdir -p "$(dirname "$data")"
printf '%s\n' "$body" >> "$data"
printf 'Content-Type: text/plain\r\n\r\nstored\n'
