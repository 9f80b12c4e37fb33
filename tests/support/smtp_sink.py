"""An aiosmtpd handler for the tests' SMTP server (tests/src/smtp.rs).

    python -m aiosmtpd -n -l 127.0.0.1:PORT -c smtp_sink.Sink DIR

Accepts every message and writes it into DIR as one JSON file per message,
numbered in the order received: {"mail_from", "rcpt_tos", "data_b64"} with
the message's bytes exactly as they came over the wire (base64, since a
message need not be UTF-8). Each file is written under a temporary name and
renamed, so the reader never sees half a message.
"""

import base64
import json
import os
import threading


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.lock = threading.Lock()
        self.received = 0

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("smtp_sink.Sink takes one argument: the directory to write messages to")
        return cls(args[0])

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.received += 1
            number = self.received
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "data_b64": base64.b64encode(envelope.original_content).decode("ascii"),
        }
        final = os.path.join(self.directory, f"{number:06}.json")
        partial = final + ".partial"
        with open(partial, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.replace(partial, final)
        return "250 Message accepted for delivery"
