"""An SMTP server's handler for the messaging tests (server/tests/messaging_smtp.rs).

Run by aiosmtpd:

    PYTHONPATH=server/tests/support python -m aiosmtpd -n -l 127.0.0.1:PORT -c smtp_sink.Sink DIR

Each message accepted is written to DIR twice: as received (NNN.eml) and as
Python's own e-mail parser reads it (NNN.json: headers, and every MIME part
with its content type, disposition, Content-ID and decoded content), so the
test checks the MIME structure with a parser other than the one that built
it. Each file appears whole (written aside, then renamed).

A recipient whose local part is `reject` is refused with 550 (a permanent
failure); `tempfail` with 451 (a transient one).
"""

import base64
import email
import email.policy
import json
import os


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("smtp_sink.Sink takes one argument: the directory to write messages to")
        return cls(args[0])

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local == "reject":
            return "550 5.1.1 Mailbox unavailable"
        if local == "tempfail":
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        sender = message["From"]
        parts = []
        for part in message.walk():
            entry = {
                "content_type": part.get_content_type(),
                "disposition": part.get_content_disposition(),
                "content_id": part.get("Content-ID"),
            }
            if not part.is_multipart():
                content = part.get_content()
                if isinstance(content, bytes):
                    entry["base64"] = base64.b64encode(content).decode("ascii")
                else:
                    entry["text"] = content
            parts.append(entry)
        summary = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(sender),
            "from_display_name": sender.addresses[0].display_name,
            "from_address": sender.addresses[0].addr_spec,
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "message_id": message["Message-ID"],
            "date": message["Date"],
            "parts": parts,
        }
        name = os.path.join(self.directory, "%03d" % self.count)
        for suffix, data in ((".eml", raw), (".json", json.dumps(summary).encode("utf-8"))):
            with open(name + suffix + ".part", "wb") as out:
                out.write(data)
            os.rename(name + suffix + ".part", name + suffix)
        return "250 Message accepted for delivery"
