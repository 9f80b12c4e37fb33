//! `assent-server enroll ticket`: a single-use enrollment link and its QR code.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{open_store, output};
use crate::{
    clock::rfc3339, config::Settings, device::DEFAULT_TICKET_TTL_SECS, operations::Operator, qr,
    state::Assent,
};

#[derive(Debug, Subcommand)]
pub enum EnrollCommand {
    /// Issue a single-use enrollment ticket: an assent://enroll link and QR code for the
    /// desktop app and assent-device, and the web authenticator's https link and QR code
    /// for a phone's camera.
    Ticket(TicketArgs),
}

#[derive(Debug, Args)]
pub struct TicketArgs {
    /// The `sub` of the user the device will approve for.
    #[arg(long)]
    pub user: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = DEFAULT_TICKET_TTL_SECS)]
    pub ttl: u64,
    /// Also write the QR code to this .png or .svg file.
    #[arg(long)]
    pub qr: Option<PathBuf>,
    /// Also write the web authenticator link's QR code (for a phone's
    /// camera) to this .png or .svg file.
    #[arg(long)]
    pub web_qr: Option<PathBuf>,
    /// Public base URL of the server, which the link points devices to
    /// [default: http://<listen>].
    #[arg(long, env = "ASSENT_ISSUER")]
    pub issuer: Option<String>,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(
    settings: Settings,
    EnrollCommand::Ticket(args): EnrollCommand,
) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    let issuer = settings
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{}", settings.listen));
    let assent = Assent::open(store, settings, &issuer).await?;
    let ticket = Operator::cli(&assent.store, &assent.settings)
        .create_enrollment_ticket(&assent, &args.user, args.ttl)
        .await?;
    if let Some(path) = &args.qr {
        qr::write_file(&ticket.enrollment_uri, path)?;
    }
    if let Some(path) = &args.web_qr {
        let web = ticket.web_enrollment_uri.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "the web authenticator needs an issuer with a host name (passkeys have no \
                 relying party on an IP address): set --issuer or ASSENT_ISSUER"
            )
        })?;
        qr::write_file(web, path)?;
    }
    if args.json {
        let mut out = json!({
            "enrollment_uri": ticket.enrollment_uri,
            "user": ticket.user,
            "expires_at": rfc3339(ticket.expires_at),
        });
        if let Some(path) = &args.qr {
            out["qr_file"] = json!(path.display().to_string());
        }
        if let Some(web) = &ticket.web_enrollment_uri {
            out["web_enrollment_uri"] = json!(web);
        }
        if let Some(path) = &args.web_qr {
            out["web_qr_file"] = json!(path.display().to_string());
        }
        return output::json(&out);
    }
    let mut text = format!(
        "Desktop app or assent-device:\n{}\n{}\n",
        qr::unicode(&ticket.enrollment_uri)?,
        ticket.enrollment_uri,
    );
    if let Some(web) = &ticket.web_enrollment_uri {
        text.push_str(&format!(
            "\nPhone (scan with the camera; opens the web authenticator):\n{}\n{}\n",
            qr::unicode(web)?,
            web
        ));
    }
    text.push_str(&format!(
        "\nexpires at {} (single use)",
        rfc3339(ticket.expires_at)
    ));
    if let Some(path) = &args.qr {
        text.push_str(&format!("\nQR code written to {}", path.display()));
    }
    if let Some(path) = &args.web_qr {
        text.push_str(&format!(
            "\nweb authenticator QR code written to {}",
            path.display()
        ));
    }
    output::text(&text)
}
