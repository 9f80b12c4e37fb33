//! `assent-server device list|revoke`.

use anyhow::bail;
use clap::Subcommand;
use serde_json::{json, Value};

use super::output::{self, Table};
use crate::{
    audit,
    clock::{now_ms, rfc3339},
    storage::{DeviceRow, Store},
};

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

pub async fn run(store: &Store, cmd: DeviceCommand) -> anyhow::Result<()> {
    match cmd {
        DeviceCommand::List { user, json } => {
            let devices = store.devices(user.as_deref()).await?;
            if json {
                return output::json(&devices.iter().map(device_json).collect());
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
            if !store
                .revoke_device(&device_id, "revoked by operator", now_ms())
                .await?
            {
                bail!("no active device {device_id:?}");
            }
            audit::record_cli(store, "device.revoke", Some(&device_id), json!({})).await?;
            output::text(&format!("revoked device {device_id}"))
        }
    }
}

fn device_json(d: &DeviceRow) -> Value {
    json!({
        "device_id": d.id,
        "user": d.user_sub,
        "name": d.name,
        "platform": d.platform,
        "key_thumbprint": d.key_thumbprint,
        "push": d.push_channel.is_some(),
        "push_disabled_reason": d.push_disabled_reason,
        "created_at": rfc3339(d.created_at),
        "revoked_at": d.revoked_at.map(rfc3339),
        "revoke_reason": d.revoke_reason,
    })
}
