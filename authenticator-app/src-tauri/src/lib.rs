//! Assent Authenticator: the desktop app (Tauri 2) on top of the device
//! library. [`authenticator`] holds the behaviour; this file wires it to the
//! window, desktop notifications, deep links and the tray.

pub mod authenticator;
pub mod commands;
pub mod error;
pub mod history;
pub mod keys;
pub mod money;
pub mod pin;
pub mod qr;
pub mod view;

#[cfg(test)]
mod ui_contract;

use std::{path::PathBuf, sync::Arc};

use tauri::{Emitter, Manager, Runtime};

pub use crate::authenticator::{Authenticator, Settings, UiEvent};

/// Window events the interface listens to.
pub mod ui_events {
    /// The inbox or an account changed: fetch it again.
    pub const INBOX_CHANGED: &str = "inbox-changed";
    /// Show this request (a notification was clicked).
    pub const OPEN_REQUEST: &str = "open-request";
    /// An enrollment link arrived from outside (deep link): ask to confirm it.
    pub const LINK_OFFERED: &str = "link-offered";
    /// Another device was enrolled for an account: say so.
    pub const DEVICE_ENROLLED: &str = "device-enrolled";

    /// Every event above: the window may listen to these and no others.
    pub const ALL: &[&str] = &[INBOX_CHANGED, OPEN_REQUEST, LINK_OFFERED, DEVICE_ENROLLED];
}

/// Reads the app's settings: `ASSENT_AUTHENTICATOR_DATA_DIR` (default: the
/// platform's app data folder) and `ASSENT_AUTHENTICATOR_KEY_STORE`
/// (`auto`, `os` or `file`).
pub fn settings_from_env(default_data_dir: PathBuf) -> anyhow::Result<Settings> {
    let data_dir = std::env::var_os("ASSENT_AUTHENTICATOR_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or(default_data_dir);
    let key_store = keys::KeyStoreChoice::parse(
        &std::env::var("ASSENT_AUTHENTICATOR_KEY_STORE").unwrap_or_default(),
    )?;
    Ok(Settings {
        data_dir,
        key_store,
        device_name: default_device_name(),
    })
}

/// "Assent Authenticator on <host name>".
fn default_device_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty());
    match host {
        Some(host) => format!("Assent Authenticator on {host}"),
        None => "Assent Authenticator".to_string(),
    }
}

/// The commands, without state or plugins: tests build on this with the
/// mock runtime and manage their own [`Authenticator`].
pub fn with_commands<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder.invoke_handler(tauri::generate_handler![
        commands::status,
        commands::suggested_device_name,
        commands::preview_link,
        commands::read_qr_image,
        commands::enroll,
        commands::add_code,
        commands::codes,
        commands::remove_code,
        commands::set_pin,
        commands::unlock,
        commands::unmute,
        commands::unenroll,
        commands::inbox,
        commands::refresh,
        commands::request,
        commands::decide,
        commands::deny_all,
        commands::history,
        commands::take_offered_link,
        commands::quit,
    ])
}

fn show_main_window<R: Runtime>(app: &tauri::AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// Offers `assent://enroll` links to the window, which asks before enrolling.
fn offer_links<R: Runtime>(app: &tauri::AppHandle<R>, urls: impl IntoIterator<Item = String>) {
    for url in urls {
        if !url.starts_with("assent://") {
            continue;
        }
        app.state::<Authenticator>().offer_link(url.clone());
        let _ = app.emit(ui_events::LINK_OFFERED, url);
        show_main_window(app);
    }
}

fn forward_ui_event<R: Runtime>(app: &tauri::AppHandle<R>, event: UiEvent) {
    match event {
        UiEvent::InboxChanged => {
            let _ = app.emit(ui_events::INBOX_CHANGED, ());
        }
        UiEvent::NewRequest {
            account_id,
            request_id,
            title,
            body,
        } => {
            let focused = app
                .get_webview_window("main")
                .and_then(|w| w.is_focused().ok())
                .unwrap_or(false);
            if focused {
                return; // the window shows it already
            }
            use tauri_plugin_notification::NotificationExt;
            let shown = app
                .notification()
                .builder()
                .title(title)
                .body(body)
                .extra("account_id", account_id)
                .extra("request_id", request_id)
                .show();
            if let Err(e) = shown {
                log::warn!("could not show a notification: {e}");
            }
        }
        UiEvent::DeviceEnrolled {
            account_id,
            account_label,
            device_name,
            platform,
        } => {
            let _ = app.emit(
                ui_events::DEVICE_ENROLLED,
                serde_json::json!({
                    "account_id": account_id,
                    "account_label": account_label,
                    "device_name": device_name,
                    "platform": platform,
                }),
            );
            use tauri_plugin_notification::NotificationExt;
            let shown = app
                .notification()
                .builder()
                .title(format!("New device on {account_label}"))
                .body(format!(
                    "\"{device_name}\" ({platform}) can now approve sign-ins for this account. \
                     If you did not add it, tell your administrator now."
                ))
                .show();
            if let Err(e) = shown {
                log::warn!("could not show a notification: {e}");
            }
        }
    }
}

#[cfg(desktop)]
fn build_tray<R: Runtime>(app: &tauri::App<R>) -> tauri::Result<()> {
    use tauri::{
        menu::{Menu, MenuItem},
        tray::{MouseButton, MouseButtonState, TrayIconBuilder, TrayIconEvent},
    };
    let open = MenuItem::with_id(app, "open", "Open Assent Authenticator", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&open, &quit])?;
    let mut tray = TrayIconBuilder::with_id("main")
        .tooltip("Assent Authenticator")
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_menu_event(|app, event| match event.id.as_ref() {
            "open" => show_main_window(app),
            "quit" => {
                app.state::<Authenticator>().stop();
                app.exit(0);
            }
            _ => {}
        })
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                show_main_window(tray.app_handle());
            }
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    Ok(())
}

#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    init_logging();
    let mut builder = tauri::Builder::default();
    #[cfg(desktop)]
    {
        // Must come first: a second launch (for instance by an assent:// link)
        // hands its arguments to this instance and exits.
        builder = builder.plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            show_main_window(app);
        }));
    }
    let builder = builder
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_notification::init());
    with_commands(builder)
        .setup(|app| {
            let settings = settings_from_env(app.path().app_data_dir()?)?;
            let authenticator = Authenticator::new(settings);
            let handle = app.handle().clone();
            authenticator.set_sink(Arc::new(move |event| forward_ui_event(&handle, event)));
            app.manage(authenticator.clone());

            use tauri_plugin_deep_link::DeepLinkExt;
            #[cfg(any(target_os = "linux", windows))]
            if let Err(e) = app.deep_link().register_all() {
                log::warn!("could not register the assent:// scheme: {e}");
            }
            if let Ok(Some(urls)) = app.deep_link().get_current() {
                offer_links(app.handle(), urls.into_iter().map(|u| u.to_string()));
            }
            let handle = app.handle().clone();
            app.deep_link().on_open_url(move |event| {
                offer_links(&handle, event.urls().into_iter().map(|u| u.to_string()));
            });

            use tauri_plugin_notification::NotificationExt;
            let handle = app.handle().clone();
            app.notification().on_action(move |performed| {
                if performed.action_id() != "tap" {
                    return;
                }
                let Some(extra) = performed.notification().map(|n| n.extra().clone()) else {
                    return;
                };
                show_main_window(&handle);
                let _ = handle.emit(
                    ui_events::OPEN_REQUEST,
                    serde_json::json!({
                        "account_id": extra.get("account_id"),
                        "request_id": extra.get("request_id"),
                    }),
                );
            })?;

            #[cfg(desktop)]
            if let Err(e) = build_tray(app) {
                log::warn!("no system tray: {e}");
            }

            tauri::async_runtime::spawn(async move { authenticator.start().await });
            Ok(())
        })
        .on_window_event(|window, event| {
            // Closing the window keeps the app running, so requests still
            // arrive and notify; "Quit" (tray or window menu) ends it, and
            // launching the app again shows the window.
            #[cfg(desktop)]
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                if window.label() == "main"
                    && std::env::var_os("ASSENT_AUTHENTICATOR_EXIT_ON_CLOSE").is_none()
                {
                    api.prevent_close();
                    let _ = window.hide();
                }
            }
        })
        .run(tauri::generate_context!())
        .expect("error while running Assent Authenticator");
}

fn init_logging() {
    let _ = env_logger::Builder::from_env(
        env_logger::Env::default().filter_or("ASSENT_AUTHENTICATOR_LOG", "warn"),
    )
    .try_init();
}
