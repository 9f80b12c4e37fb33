//! The e-mails (HTML and plain text) and SMS that carry one-time codes and
//! sign-in links, with a client's branding.
//!
//! The bodies are `askama` templates under `server/templates/messaging/`,
//! compiled into the server: the HTML one escapes every value it is given
//! (branding texts, the client's name, the requester's user agent are all
//! someone else's text), the plain-text one takes them as they are. Values
//! that end up in a header (subject, sender name) lose their control
//! characters here as well, whatever validation the caller did.
//!
//! The mail shows where the request came from ("Requested from
//! 203.0.113.9, Firefox on Linux"), so that a user who did not ask for it
//! can tell that someone else is trying their address.

use askama::Template;
use base64::{
    engine::general_purpose::{STANDARD, STANDARD_NO_PAD},
    Engine,
};
use serde::Deserialize;

use super::{EmailMessage, InlineImage, SmsMessage};

/// A client's branding of its e-mails. Every field is optional; a missing
/// (or empty) one takes the default. Texts may say `{client}` for the
/// client's name.
#[derive(Deserialize, Default, Clone, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailBranding {
    pub subject: Option<String>,
    /// `#RRGGBB`: the button and the code's accent.
    pub primary_color: Option<String>,
    /// A PNG, JPEG, GIF or WebP image, base64, at most 100 KB decoded.
    pub base64logo: Option<String>,
    pub header_text: Option<String>,
    pub body_text: Option<String>,
    /// The sign-in button's label (link e-mails).
    pub link_text: Option<String>,
    pub info_text: Option<String>,
    pub footer_text: Option<String>,
    /// Replaces the display name of `smtp_from` (never its address).
    pub sender_name: Option<String>,
}

/// The colour when the branding has none.
pub const DEFAULT_PRIMARY_COLOR: &str = "#6981FF";
/// The footer when the branding has none.
pub const DEFAULT_FOOTER: &str = "If you didn't request this email, you can safely ignore it.";
/// Largest logo, decoded.
pub const MAX_LOGO_BYTES: usize = 100 * 1024;
/// Longest subject and sender name, in characters.
pub const MAX_LINE_CHARS: usize = 150;
/// Longest of the other texts, in characters.
pub const MAX_TEXT_CHARS: usize = 500;
/// The content id of the logo (`<img src="cid:logo">`).
const LOGO_CONTENT_ID: &str = "logo";

impl EmailBranding {
    /// Checks what a client may set; the error names the field (as the
    /// JSON spells it) and what it must be.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(color) = &self.primary_color {
            if !is_hex_color(color) {
                return Err(format!(
                    "primaryColor must be a colour like {DEFAULT_PRIMARY_COLOR} (#RRGGBB), got {:?}",
                    truncate(color, 20)
                ));
            }
        }
        if let Some(logo) = &self.base64logo {
            decode_logo(logo).map_err(|e| format!("base64logo {e}"))?;
        }
        let texts = [
            ("subject", &self.subject, MAX_LINE_CHARS, true),
            ("senderName", &self.sender_name, MAX_LINE_CHARS, true),
            ("headerText", &self.header_text, MAX_TEXT_CHARS, false),
            ("bodyText", &self.body_text, MAX_TEXT_CHARS, false),
            ("linkText", &self.link_text, MAX_TEXT_CHARS, false),
            ("infoText", &self.info_text, MAX_TEXT_CHARS, false),
            ("footerText", &self.footer_text, MAX_TEXT_CHARS, false),
        ];
        for (name, value, max, single_line) in texts {
            let Some(value) = value else { continue };
            if value.chars().count() > max {
                return Err(format!("{name} must be at most {max} characters"));
            }
            if single_line && value.chars().any(char::is_control) {
                return Err(format!(
                    "{name} must be one line, without line breaks or control characters"
                ));
            }
            if !single_line && value.chars().any(|c| c.is_control() && c != '\n') {
                return Err(format!(
                    "{name} must not contain control characters (line breaks are \\n)"
                ));
            }
        }
        Ok(())
    }
}

/// Where a sign-in was requested from, as the end user's browser showed
/// itself to the server: shown in the mail so that a user can spot a
/// request that was not theirs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

/// The HTML body (`templates/messaging/email.html`): every value escaped.
#[derive(Template)]
#[template(path = "messaging/email.html")]
struct EmailHtml<'a> {
    texts: &'a Texts,
    primary_color: &'a str,
    /// Empty when there is no logo.
    logo_cid: &'a str,
    /// Empty for a link e-mail.
    code: &'a str,
    /// Empty for a code e-mail.
    link_url: &'a str,
}

/// The plain-text body (`templates/messaging/email.txt`).
#[derive(Template)]
#[template(path = "messaging/email.txt")]
struct EmailText<'a> {
    texts: &'a Texts,
    code: &'a str,
    link_url: &'a str,
}

/// The texts of one e-mail, branding and defaults merged, control
/// characters removed.
struct Texts {
    subject: String,
    client_name: String,
    header: String,
    body: String,
    link: String,
    info: String,
    /// "Requested from ...", or empty.
    context: String,
    footer: String,
}

/// What differs between a code e-mail and a link e-mail.
struct Defaults {
    subject: String,
    header: String,
    body: String,
    info: String,
}

/// An e-mail carrying the one-time `code`.
pub fn code_email(
    to: &str,
    branding: &EmailBranding,
    client_name: &str,
    code: &str,
    valid_for_secs: u64,
    context: &RequestContext,
) -> EmailMessage {
    let client = one_line(client_name);
    let validity = human_duration(valid_for_secs);
    let defaults = Defaults {
        subject: format!("Your sign-in code for {client}"),
        header: "Your sign-in code".into(),
        body: format!("Enter this code to sign in to {client}:"),
        info: format!(
            "The code expires in {validity} and works once. {client} will never ask you for it: \
             don't share it with anyone."
        ),
    };
    build_email(
        to,
        branding,
        &client,
        defaults,
        &one_line(code),
        "",
        context,
    )
}

/// An e-mail carrying the sign-in link `link_url` (a button, and the URL in
/// the plain-text part).
pub fn link_email(
    to: &str,
    branding: &EmailBranding,
    client_name: &str,
    link_url: &str,
    valid_for_secs: u64,
    context: &RequestContext,
) -> EmailMessage {
    let client = one_line(client_name);
    let validity = human_duration(valid_for_secs);
    let defaults = Defaults {
        subject: format!("Sign in to {client}"),
        header: format!("Sign in to {client}"),
        body: format!("Use the link below to sign in to {client}."),
        info: format!(
            "The link expires in {validity} and works once. Don't forward this email: \
             anyone with the link can sign in as you."
        ),
    };
    build_email(
        to,
        branding,
        &client,
        defaults,
        "",
        &one_line(link_url),
        context,
    )
}

fn build_email(
    to: &str,
    branding: &EmailBranding,
    client: &str,
    defaults: Defaults,
    code: &str,
    link_url: &str,
    context: &RequestContext,
) -> EmailMessage {
    let pick = |value: &Option<String>, default: String, single_line: bool| match value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        Some(v) => {
            let v = v.replace("{client}", client);
            if single_line {
                one_line(&v)
            } else {
                clean(&v)
            }
        }
        None => default,
    };
    let texts = Texts {
        subject: pick(&branding.subject, defaults.subject, true),
        client_name: client.to_string(),
        header: pick(&branding.header_text, defaults.header, false),
        body: pick(&branding.body_text, defaults.body, false),
        link: pick(&branding.link_text, "Sign in".into(), false),
        info: pick(&branding.info_text, defaults.info, false),
        context: context_line(context),
        footer: pick(&branding.footer_text, DEFAULT_FOOTER.into(), false),
    };
    let primary_color = branding
        .primary_color
        .as_deref()
        .filter(|c| is_hex_color(c))
        .unwrap_or(DEFAULT_PRIMARY_COLOR);
    let logo = branding
        .base64logo
        .as_deref()
        .and_then(|logo| decode_logo(logo).ok())
        .map(|(bytes, content_type)| InlineImage {
            content_id: LOGO_CONTENT_ID.into(),
            content_type: content_type.into(),
            bytes,
        });
    let html = EmailHtml {
        texts: &texts,
        primary_color,
        logo_cid: if logo.is_some() { LOGO_CONTENT_ID } else { "" },
        code,
        link_url,
    }
    .render()
    .expect("the e-mail template renders");
    let text = EmailText {
        texts: &texts,
        code,
        link_url,
    }
    .render()
    .expect("the e-mail template renders");
    EmailMessage {
        to: to.trim().to_string(),
        subject: texts.subject,
        html,
        text,
        sender_name: branding
            .sender_name
            .as_deref()
            .map(one_line)
            .filter(|n| !n.is_empty()),
        inline_images: logo.into_iter().collect(),
    }
}

/// An SMS carrying the one-time `code`.
///
/// `custom_message` may say `{code}`, `{client}`, and with a transaction
/// `{sum}` and `{transaction_id}`; a message without `{code}` gets the code
/// appended. With a `transaction` (its id and the amount, as shown to the
/// payer), the SMS ties the code to that amount and transaction (PSD2's
/// dynamic linking): the default text says so, and a custom message that
/// names neither gets both appended.
pub fn code_sms(
    to: &str,
    client_name: &str,
    code: &str,
    valid_for_secs: u64,
    custom_message: Option<&str>,
    sender_id: Option<&str>,
    transaction: Option<(&str, &str)>,
) -> SmsMessage {
    let client = one_line(client_name);
    let code = one_line(code);
    let validity = human_duration(valid_for_secs);
    let transaction = transaction.map(|(id, sum)| (one_line(id), one_line(sum)));
    let custom = custom_message.map(str::trim).filter(|m| !m.is_empty());
    let body = match (custom, &transaction) {
        (Some(custom), _) => {
            let (id, sum) = transaction
                .as_ref()
                .map_or(("", ""), |(id, sum)| (id.as_str(), sum.as_str()));
            let mut body = substitute(
                &clean(custom),
                &[
                    ("{code}", &code),
                    ("{client}", &client),
                    ("{sum}", sum),
                    ("{transaction_id}", id),
                ],
            );
            if transaction.is_some()
                && !custom.contains("{sum}")
                && !custom.contains("{transaction_id}")
            {
                body.push_str(&format!(" Amount: {sum}, transaction {id}."));
            }
            if !custom.contains("{code}") {
                body.push(' ');
                body.push_str(&code);
            }
            body
        }
        (None, Some((id, sum))) => format!(
            "{code} is your code to approve {sum} for transaction {id} at {client}. \
             It expires in {validity}. Don't share it."
        ),
        (None, None) => format!(
            "{code} is your sign-in code for {client}. It expires in {validity}. Don't share it."
        ),
    };
    SmsMessage {
        to: to.trim().to_string(),
        body,
        sender_id: sender_id.map(one_line).filter(|s| !s.is_empty()),
    }
}

/// Replaces each placeholder in one pass: a value that contains a
/// placeholder (a client named "{code}") is not replaced again.
fn substitute(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        for (placeholder, value) in values {
            if let Some(after) = rest.strip_prefix(placeholder) {
                out.push_str(value);
                rest = after;
                continue 'scan;
            }
        }
        out.push('{');
        rest = &rest[1..];
    }
    out.push_str(rest);
    out
}

/// "Requested from 203.0.113.9 (Firefox on Linux).", or empty.
fn context_line(context: &RequestContext) -> String {
    let ip = context
        .ip_address
        .as_deref()
        .map(|ip| truncate(&one_line(ip), 64))
        .filter(|ip| !ip.is_empty());
    let agent = context
        .user_agent
        .as_deref()
        .map(describe_user_agent)
        .filter(|a| !a.is_empty());
    match (ip, agent) {
        (Some(ip), Some(agent)) => format!("Requested from {ip} ({agent})."),
        (Some(ip), None) => format!("Requested from {ip}."),
        (None, Some(agent)) => format!("Requested with {agent}."),
        (None, None) => String::new(),
    }
}

/// "Firefox on Linux" from a user agent string, or the string itself
/// (shortened) when it names no browser or system this knows.
pub fn describe_user_agent(user_agent: &str) -> String {
    let ua = one_line(user_agent);
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ]
    .into_iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| name);
    let system = [
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Android", "Android"),
        ("CrOS", "ChromeOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Macintosh", "macOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(one), None) | (None, Some(one)) => one.to_string(),
        (None, None) => truncate(ua.trim(), 80),
    }
}

/// "30 seconds", "10 minutes", "1 hour": rounded down, so the mail never
/// promises more time than there is.
pub fn human_duration(secs: u64) -> String {
    let (n, unit) = if secs < 60 {
        (secs, "second")
    } else if secs >= 3600 && secs % 3600 == 0 {
        (secs / 3600, "hour")
    } else {
        (secs / 60, "minute")
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// The logo's bytes and content type, from its base64; the error says what
/// is wrong with it.
fn decode_logo(base64: &str) -> Result<(Vec<u8>, &'static str), String> {
    let text: String = base64
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    // Refused before decoding what could only decode too large.
    if text.len() > MAX_LOGO_BYTES.div_ceil(3) * 4 {
        return Err(format!(
            "must be at most {} KB decoded",
            MAX_LOGO_BYTES / 1024
        ));
    }
    let bytes = STANDARD
        .decode(&text)
        .or_else(|_| STANDARD_NO_PAD.decode(&text))
        .map_err(|_| "must be base64 (the standard alphabet)".to_string())?;
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(format!(
            "must be at most {} KB decoded",
            MAX_LOGO_BYTES / 1024
        ));
    }
    let content_type =
        sniff_image(&bytes).ok_or_else(|| "must be a PNG, JPEG, GIF or WebP image".to_string())?;
    Ok((bytes, content_type))
}

/// The image type by its magic bytes, whatever anyone claims it is.
fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

fn is_hex_color(color: &str) -> bool {
    color.len() == 7 && color.starts_with('#') && color[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// One line: control characters (line breaks included) become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// Text whose line breaks are kept (`\n`) and other control characters dropped.
fn clean(text: &str) -> String {
    text.replace("\r\n", "\n")
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .collect()
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(max_chars - 1).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVIL: &str = "<script>alert(1)</script>";
    /// A 1×1 PNG.
    const PNG: &[u8] = &[
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F,
        0x15, 0xC4, 0x89,
    ];

    fn context() -> RequestContext {
        RequestContext {
            ip_address: Some("203.0.113.9".into()),
            user_agent: Some(
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0".into(),
            ),
        }
    }

    #[test]
    fn defaults_name_the_client_the_code_and_the_context() {
        let mail = code_email(
            "a@example.com",
            &EmailBranding::default(),
            "Acme",
            "123456",
            600,
            &context(),
        );
        assert_eq!(mail.subject, "Your sign-in code for Acme");
        assert!(mail.html.contains("123456") && mail.text.contains("123456"));
        assert!(mail.html.contains(DEFAULT_PRIMARY_COLOR));
        assert!(mail
            .html
            .contains(DEFAULT_FOOTER.replace('\'', "&#39;").as_str()));
        assert!(mail.text.contains(DEFAULT_FOOTER));
        assert!(mail.text.contains("10 minutes"));
        assert!(mail
            .text
            .contains("Requested from 203.0.113.9 (Firefox on Linux)."));
        assert!(mail.inline_images.is_empty() && !mail.html.contains("cid:"));
        assert_eq!(mail.sender_name, None);

        let link = link_email(
            "a@example.com",
            &EmailBranding::default(),
            "Acme",
            "https://login.example/passwordless/verify?t=abc&u=1",
            3600,
            &RequestContext::default(),
        );
        assert_eq!(link.subject, "Sign in to Acme");
        assert!(
            link.html
                .contains("href=\"https://login.example/passwordless/verify?t=abc&#38;u=1\"")
                || link
                    .html
                    .contains("href=\"https://login.example/passwordless/verify?t=abc&amp;u=1\"")
        );
        assert!(link
            .text
            .contains("https://login.example/passwordless/verify?t=abc&u=1"));
        assert!(link.text.contains("1 hour"));
        assert!(!link.text.contains("Requested"));
    }

    #[test]
    fn every_text_is_escaped_in_the_html() {
        let branding = EmailBranding {
            subject: Some(EVIL.into()),
            primary_color: Some(format!("\"><{EVIL}")),
            base64logo: None,
            header_text: Some(EVIL.into()),
            body_text: Some(EVIL.into()),
            link_text: Some(EVIL.into()),
            info_text: Some(EVIL.into()),
            footer_text: Some(EVIL.into()),
            sender_name: Some(EVIL.into()),
        };
        let evil_context = RequestContext {
            ip_address: Some(EVIL.into()),
            user_agent: Some(EVIL.into()),
        };
        for mail in [
            code_email("a@example.com", &branding, EVIL, EVIL, 300, &evil_context),
            link_email(
                "a@example.com",
                &branding,
                EVIL,
                &format!("https://x.example/\"{EVIL}"),
                300,
                &evil_context,
            ),
        ] {
            assert!(!mail.html.contains("<script"), "{}", mail.html);
            assert!(!mail.html.contains("\"><"), "{}", mail.html);
            // Subject (title), header, body, code or link text, info, the
            // requester's address and browser, footer: each escaped.
            let escaped = mail.html.matches("&#60;script&#62;").count();
            assert!(escaped >= 8, "{escaped}: {}", mail.html);
            // An invalid colour is not used at all.
            assert!(mail.html.contains(DEFAULT_PRIMARY_COLOR));
            // The plain-text part is text: shown as written.
            assert!(mail.text.contains(EVIL));
        }
    }

    #[test]
    fn branding_replaces_the_defaults_and_the_logo_is_inline() {
        let branding = EmailBranding {
            subject: Some("Welcome back to {client}".into()),
            primary_color: Some("#112233".into()),
            base64logo: Some(STANDARD.encode(PNG)),
            header_text: Some("Hello!".into()),
            footer_text: Some("Acme Inc., 1 Road".into()),
            sender_name: Some("Acme Login".into()),
            ..EmailBranding::default()
        };
        assert_eq!(branding.validate(), Ok(()));
        let mail = code_email("a@example.com", &branding, "Acme", "42", 90, &context());
        assert_eq!(mail.subject, "Welcome back to Acme");
        assert!(mail.html.contains("#112233") && !mail.html.contains(DEFAULT_PRIMARY_COLOR));
        assert!(mail.html.contains("src=\"cid:logo\""));
        assert!(!mail.html.contains("data:"));
        assert_eq!(mail.inline_images.len(), 1);
        assert_eq!(mail.inline_images[0].content_type, "image/png");
        assert_eq!(mail.inline_images[0].bytes, PNG);
        assert_eq!(mail.sender_name.as_deref(), Some("Acme Login"));
        assert!(mail.text.contains("Acme Inc., 1 Road") && !mail.text.contains(DEFAULT_FOOTER));
        assert!(mail.text.contains("1 minute"));
    }

    #[test]
    fn branding_validation_names_the_field() {
        let check = |b: EmailBranding| b.validate().unwrap_err();
        assert!(check(EmailBranding {
            primary_color: Some("red".into()),
            ..Default::default()
        })
        .starts_with("primaryColor"));
        assert!(check(EmailBranding {
            primary_color: Some("#12345G".into()),
            ..Default::default()
        })
        .starts_with("primaryColor"));
        let not_image = check(EmailBranding {
            base64logo: Some(STANDARD.encode(b"<svg></svg>")),
            ..Default::default()
        });
        assert!(not_image.starts_with("base64logo") && not_image.contains("PNG"));
        assert!(check(EmailBranding {
            base64logo: Some("***".into()),
            ..Default::default()
        })
        .starts_with("base64logo"));
        let mut big = PNG.to_vec();
        big.resize(MAX_LOGO_BYTES + 1, 0);
        assert!(check(EmailBranding {
            base64logo: Some(STANDARD.encode(&big)),
            ..Default::default()
        })
        .contains("100 KB"));
        big.truncate(MAX_LOGO_BYTES);
        assert_eq!(
            EmailBranding {
                base64logo: Some(STANDARD.encode(&big)),
                ..Default::default()
            }
            .validate(),
            Ok(())
        );
        assert_eq!(sniff_image(b"GIF89a\x01\x00"), Some("image/gif"));
        assert_eq!(sniff_image(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff_image(b"\xFF\xD8\xFF\xE0"), Some("image/jpeg"));
        assert_eq!(sniff_image(b"RIFF\0\0\0\0WAVE"), None);
        assert!(check(EmailBranding {
            subject: Some("Hi\r\nBcc: x@evil.example".into()),
            ..Default::default()
        })
        .starts_with("subject"));
        assert!(check(EmailBranding {
            sender_name: Some("A\nB".into()),
            ..Default::default()
        })
        .starts_with("senderName"));
        assert!(check(EmailBranding {
            subject: Some("x".repeat(MAX_LINE_CHARS + 1)),
            ..Default::default()
        })
        .starts_with("subject"));
        assert!(check(EmailBranding {
            footer_text: Some("x".repeat(MAX_TEXT_CHARS + 1)),
            ..Default::default()
        })
        .starts_with("footerText"));
        assert!(check(EmailBranding {
            body_text: Some("bell\u{7}".into()),
            ..Default::default()
        })
        .starts_with("bodyText"));
        // Line breaks are fine in the longer texts.
        assert_eq!(
            EmailBranding {
                body_text: Some("line one\nline two".into()),
                ..Default::default()
            }
            .validate(),
            Ok(())
        );
        // Unknown fields are refused when parsed.
        assert!(serde_json::from_str::<EmailBranding>(r#"{"logoUrl": "x"}"#).is_err());
        let parsed: EmailBranding =
            serde_json::from_str(r##"{"primaryColor": "#000000", "base64logo": null}"##).unwrap();
        assert_eq!(parsed.primary_color.as_deref(), Some("#000000"));
    }

    #[test]
    fn header_values_lose_their_line_breaks_even_unvalidated() {
        let branding = EmailBranding {
            subject: Some("Hi\r\nBcc: x@evil.example".into()),
            sender_name: Some("Acme\r\nBcc: y@evil.example".into()),
            ..Default::default()
        };
        let mail = code_email("a@example.com", &branding, "A\nB", "1", 60, &context());
        assert!(!mail.subject.contains(['\r', '\n']));
        assert!(!mail.sender_name.unwrap().contains(['\r', '\n']));
    }

    #[test]
    fn sms_texts_and_placeholders() {
        let sms = code_sms("+4915112345678", "Acme", "123456", 300, None, None, None);
        assert_eq!(
            sms.body,
            "123456 is your sign-in code for Acme. It expires in 5 minutes. Don't share it."
        );
        assert_eq!(sms.sender_id, None);

        let custom = code_sms(
            "+4915112345678",
            "Acme",
            "123456",
            300,
            Some("{client}: your code is {code}. {unknown}"),
            Some("ACME"),
            None,
        );
        assert_eq!(custom.body, "Acme: your code is 123456. {unknown}");
        assert_eq!(custom.sender_id.as_deref(), Some("ACME"));

        let appended = code_sms(
            "+4915112345678",
            "Acme",
            "123456",
            300,
            Some("Your code:"),
            None,
            None,
        );
        assert_eq!(appended.body, "Your code: 123456");

        // A client named like a placeholder is not substituted again.
        let tricky = code_sms(
            "+4915112345678",
            "{code}",
            "123456",
            300,
            Some("{client} {code}"),
            None,
            None,
        );
        assert_eq!(tricky.body, "{code} 123456");
    }

    #[test]
    fn sms_with_a_transaction_links_code_amount_and_transaction() {
        let tx = Some(("TX-981", "EUR 149.99"));
        let sms = code_sms("+4915112345678", "Acme Bank", "734512", 300, None, None, tx);
        assert!(
            sms.body.starts_with(
                "734512 is your code to approve EUR 149.99 for transaction TX-981 at Acme Bank."
            ),
            "{}",
            sms.body
        );
        let custom = code_sms(
            "+4915112345678",
            "Acme Bank",
            "734512",
            300,
            Some("Approve {sum} ({transaction_id}) with {code}"),
            None,
            tx,
        );
        assert_eq!(custom.body, "Approve EUR 149.99 (TX-981) with 734512");
        let bare = code_sms(
            "+4915112345678",
            "Acme Bank",
            "734512",
            300,
            Some("Code:"),
            None,
            tx,
        );
        assert_eq!(
            bare.body,
            "Code: Amount: EUR 149.99, transaction TX-981. 734512"
        );
    }

    #[test]
    fn durations_and_user_agents_read_naturally() {
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(45), "45 seconds");
        assert_eq!(human_duration(60), "1 minute");
        assert_eq!(human_duration(659), "10 minutes");
        assert_eq!(human_duration(7200), "2 hours");
        assert_eq!(human_duration(5400), "90 minutes");
        assert_eq!(
            describe_user_agent("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 Edg/126.0"),
            "Edge on Windows"
        );
        assert_eq!(
            describe_user_agent("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"),
            "Safari on iOS"
        );
        assert_eq!(describe_user_agent("curl/8.5.0"), "curl/8.5.0");
        assert_eq!(describe_user_agent(&"x".repeat(200)).chars().count(), 80);
    }
}
