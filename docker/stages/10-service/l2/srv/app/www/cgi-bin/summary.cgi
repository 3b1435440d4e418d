#!/bin/sh
# GET /cgi-bin/summary.cgi: how many records are stored, and their checksum.
data=/srv/app/data/records.txt
printf 'Content-Type: text/plain\r\n\r\n'
if [ -f "$data" ]; then
    echo "records $(wc -l < "$data")"
    echo "md5 $(md5sum < "$data" | cut -d' ' -f1)"
else
    echo "records 0"
fi
