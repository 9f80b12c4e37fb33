//! The commands the window calls. Each one forwards to [`Authenticator`];
//! all are async, so network calls, signing and key-store access never run
//! on the UI thread.

use tauri::{Manager, Runtime, State};

use assent_shared::protocol::Decision;

use crate::{
    authenticator::{
        AccountView, Authenticator, CodeView, DecisionView, DenyAllView, EnrollPreview, InboxView,
        Status,
    },
    error::{AppError, ErrorKind},
    history::HistoryEntry,
    qr,
    view::RequestView,
};

#[tauri::command]
pub async fn status(app: State<'_, Authenticator>) -> Result<Status, AppError> {
    Ok(app.status().await)
}

/// The device name suggested in the enrollment form.
#[tauri::command]
pub fn suggested_device_name(app: State<'_, Authenticator>) -> String {
    app.settings().device_name.clone()
}

#[tauri::command]
pub fn preview_link(
    app: State<'_, Authenticator>,
    link: String,
) -> Result<EnrollPreview, AppError> {
    app.preview_link(&link)
}

/// Reads a QR code out of an image file's bytes: an enrollment link or a
/// sign-in code link, previewed like a pasted one.
#[tauri::command]
pub async fn read_qr_image(
    app: State<'_, Authenticator>,
    image: Vec<u8>,
) -> Result<EnrollPreview, AppError> {
    let link = tokio::task::spawn_blocking(move || qr::link_from_image(&image))
        .await
        .map_err(AppError::internal)?
        .map_err(|e| AppError::new(ErrorKind::NoQr, e.to_string()))?;
    app.preview_link(&link)
}

#[tauri::command]
pub async fn enroll(
    app: State<'_, Authenticator>,
    link: String,
    device_name: String,
    pin: String,
) -> Result<AccountView, AppError> {
    app.enroll(&link, &device_name, &pin).await
}

/// Adds a code account from an `otpauth://totp/` link, with the app PIN
/// (chosen by this call when none is set yet).
#[tauri::command]
pub async fn add_code(
    app: State<'_, Authenticator>,
    link: String,
    pin: String,
) -> Result<CodeView, AppError> {
    app.add_code(&link, &pin).await
}

/// Every code account with its current code.
#[tauri::command]
pub async fn codes(app: State<'_, Authenticator>) -> Result<Vec<CodeView>, AppError> {
    Ok(app.codes().await)
}

#[tauri::command]
pub async fn remove_code(app: State<'_, Authenticator>, id: String) -> Result<(), AppError> {
    app.remove_code(&id).await
}

/// Chooses the first app PIN.
#[tauri::command]
pub async fn set_pin(app: State<'_, Authenticator>, pin: String) -> Result<(), AppError> {
    app.set_pin(&pin).await
}

/// Opens the keys kept in files encrypted under the PIN.
#[tauri::command]
pub async fn unlock(app: State<'_, Authenticator>, pin: String) -> Result<Status, AppError> {
    app.unlock(&pin).await
}

/// Lifts the mute "This wasn't me" put on the account's sign-in requests.
#[tauri::command]
pub async fn unmute(app: State<'_, Authenticator>, account_id: String) -> Result<(), AppError> {
    app.unmute(&account_id).await
}

#[tauri::command]
pub async fn unenroll(
    app: State<'_, Authenticator>,
    account_id: String,
    even_if_unreachable: bool,
) -> Result<(), AppError> {
    app.unenroll(&account_id, even_if_unreachable).await
}

#[tauri::command]
pub async fn inbox(app: State<'_, Authenticator>) -> Result<InboxView, AppError> {
    Ok(app.inbox().await)
}

#[tauri::command]
pub async fn refresh(app: State<'_, Authenticator>) -> Result<InboxView, AppError> {
    Ok(app.refresh_all().await)
}

#[tauri::command]
pub async fn request(
    app: State<'_, Authenticator>,
    account_id: String,
    request_id: String,
) -> Result<RequestView, AppError> {
    app.request(&account_id, &request_id).await
}

/// `choice` is spelled as in the history: `approved`, `denied`, `not_me`
/// (or `cancelled`). Approving takes the app PIN and, when the request asks
/// for it, the number the requesting application shows.
#[tauri::command]
pub async fn decide(
    app: State<'_, Authenticator>,
    account_id: String,
    request_id: String,
    choice: Decision,
    match_code: Option<String>,
    pin: Option<String>,
) -> Result<DecisionView, AppError> {
    app.decide(
        &account_id,
        &request_id,
        choice,
        match_code.as_deref(),
        pin.as_deref(),
    )
    .await
}

/// Denies every pending request (`denied` or `not_me`).
#[tauri::command]
pub async fn deny_all(
    app: State<'_, Authenticator>,
    choice: Decision,
) -> Result<DenyAllView, AppError> {
    app.deny_all(choice).await
}

#[tauri::command]
pub async fn history(
    app: State<'_, Authenticator>,
    account_id: Option<String>,
) -> Result<Vec<HistoryEntry>, AppError> {
    app.history(account_id.as_deref()).await
}

/// An `assent://` link the app was opened with, if the window has not taken it yet.
#[tauri::command]
pub fn take_offered_link(app: State<'_, Authenticator>) -> Option<String> {
    app.take_offered_link()
}

/// Quits the app (closing the window only hides it).
#[tauri::command]
pub fn quit<R: Runtime>(app: tauri::AppHandle<R>) {
    if let Some(authenticator) = app.try_state::<Authenticator>() {
        authenticator.stop();
    }
    app.exit(0);
}
