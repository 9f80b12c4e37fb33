//! `assent-server device list|revoke`.

use clap::Subcommand;

use super::output::{self, Table};
use crate::operations::{views, Operator};

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// List devices.
    List {
        /// Only this user's devices.
        #[arg(long)]
        user: Option<String>,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a device: it can do nothing more.
    Revoke { device_id: String },
}

pub async fn run(op: &Operator<'_>, cmd: DeviceCommand) -> anyhow::Result<()> {
    match cmd {
        DeviceCommand::List { user, json } => {
            let devices = op.devices(user.as_deref()).await?;
            if json {
                return output::json(&devices.iter().map(views::device).collect());
            }
            let mut table = Table::new(&["DEVICE_ID", "USER", "PLATFORM", "STATE", "NAME"]);
            for d in devices {
                let state = if d.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                table.row(vec![d.id, d.user_sub, d.platform, state.into(), d.name]);
            }
            table.print()
        }
        DeviceCommand::Revoke { device_id } => {
            op.revoke_device(&device_id).await?;
            output::text(&format!("revoked device {device_id}"))
        }
    }
}
