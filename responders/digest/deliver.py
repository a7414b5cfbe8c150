"""Send a rendered digest by SMTP (STARTTLS, implicit TLS or plain), as one multipart/related email:

    multipart/related
      multipart/alternative
        text/plain
        text/html        (references the images as cid:...)
      image/png ...      (Content-ID, inline)
"""

from __future__ import annotations

import hashlib
import re
import smtplib
import ssl
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate

from models.config import SmtpConfig
from responders.digest.render import RenderedDigest

TIMEOUT_S = 30.0


def message_id(brand: str, day: str, sender: str) -> str:
    """A Message-ID derived from brand and day only: a re-send of the same digest carries the same id."""
    slug = re.sub(r"[^a-z0-9]+", "-", brand.lower()).strip("-") or "brand"
    tag = hashlib.sha256(f"{brand}|{day}".encode()).hexdigest()[:12]
    domain = sender.rpartition("@")[2] or "openear.invalid"
    return f"<digest.{slug}.{day}.{tag}@{domain}>"


def build_message(rendered: RenderedDigest, *, sender: str, recipients: list[str], msg_id: str) -> MIMEMultipart:
    """The email: text and HTML alternatives, the charts as inline related parts."""
    root = MIMEMultipart("related", type="multipart/alternative")
    root["Subject"] = rendered.subject
    root["From"] = sender
    root["To"] = ", ".join(recipients)
    root["Date"] = formatdate(localtime=False)
    root["Message-ID"] = msg_id
    root["Auto-Submitted"] = "auto-generated"
    alternative = MIMEMultipart("alternative")
    alternative.attach(MIMEText(rendered.text, "plain", "utf-8"))
    alternative.attach(MIMEText(rendered.html, "html", "utf-8"))
    root.attach(alternative)
    for cid, png in rendered.images.items():
        image = MIMEImage(png, "png")
        image["Content-ID"] = f"<{cid}>"
        image["Content-Disposition"] = f'inline; filename="{cid.split("@")[0]}.png"'
        root.attach(image)
    return root


def send_message(message: MIMEMultipart, smtp: SmtpConfig, recipients: list[str]) -> str:
    """Hand the message to the SMTP server; returns its Message-ID. Raises on any refusal."""
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if smtp.security == "tls":
        client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=TIMEOUT_S, context=context)
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=TIMEOUT_S)
    with client:
        client.ehlo()
        if smtp.security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if smtp.username:
            client.login(smtp.username, smtp.password.get_secret_value() if smtp.password else "")
        refused = client.send_message(message, from_addr=smtp.sender, to_addrs=recipients)
        if refused and len(refused) == len(recipients):
            raise smtplib.SMTPRecipientsRefused(refused)
    return str(message["Message-ID"])


def deliver(rendered: RenderedDigest, smtp: SmtpConfig, recipients: list[str], *, brand: str, day: str) -> str:
    """Build and send the digest email; returns the Message-ID."""
    msg_id = message_id(brand, day, smtp.sender)
    return send_message(build_message(rendered, sender=smtp.sender, recipients=recipients, msg_id=msg_id),
                        smtp, recipients)
