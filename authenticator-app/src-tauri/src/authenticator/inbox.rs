//! The inbox: every account's pending requests as last fetched (verified
//! before they get here), the person's decisions on them, and the history
//! those decisions leave.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    path::PathBuf,
};

use assent_device::{Answer, VerifiedChallenge};
use assent_shared::{
    error::DeviceErrorCode,
    protocol::{Decision, UserVerification, Verdict},
};
use serde::Serialize;

use super::{lock, now_secs, Authenticator, UiEvent};
use crate::{
    error::{AppError, ErrorKind},
    history::{self, HistoryEntry},
    view::RequestView,
};

#[derive(Debug, Clone, Serialize)]
pub struct InboxView {
    /// Oldest first.
    pub requests: Vec<RequestView>,
    /// Requests refused because their server signature did not verify.
    pub hidden_bad_signatures: usize,
    /// Requests recently answered elsewhere, newest last: the screen says
    /// what became of the one it showed.
    pub resolved: Vec<ResolvedView>,
}

/// A request that left the inbox because it was answered on another device
/// (or withdrawn or expired on the server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedView {
    pub account_id: String,
    pub request_id: String,
    /// `approved` or `denied` as the server told it; `None` when it did not say.
    pub outcome: Option<String>,
}

/// What "Deny all" did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DenyAllView {
    pub denied: usize,
    /// Requests that could not be denied, with why (in words).
    pub failed: Vec<String>,
}

/// How many answered-elsewhere notes are kept.
const RESOLVED_KEPT: usize = 50;

#[derive(Debug, Clone, Serialize)]
pub struct DecisionView {
    pub request_id: String,
    /// `approved` or `denied`, as the server recorded it.
    pub status: String,
}

struct PendingRequest {
    challenge: VerifiedChallenge,
    view: RequestView,
}

/// By (account id, request id).
type RequestKey = (String, String);

#[derive(Default)]
pub(super) struct Inbox {
    requests: HashMap<RequestKey, PendingRequest>,
    hidden: HashMap<String, usize>,
    /// Requests already announced, so a refresh does not announce them again.
    announced: HashSet<RequestKey>,
    /// Per account: the number of the latest fetch started, and of the one
    /// whose answer the inbox holds. Fetches overlap (the event stream, the
    /// refresh button, window focus); an answer older than what is shown is
    /// dropped instead of bringing back a stale list.
    fetches_started: HashMap<String, u64>,
    fetch_shown: HashMap<String, u64>,
    resolved: VecDeque<ResolvedView>,
}

impl Inbox {
    fn start_fetch(&mut self, account_id: &str) -> u64 {
        let n = self
            .fetches_started
            .entry(account_id.to_string())
            .or_default();
        *n += 1;
        *n
    }

    /// True when fetch `n` is newer than what is shown (and marks it shown).
    fn accept_fetch(&mut self, account_id: &str, n: u64) -> bool {
        let shown = self.fetch_shown.entry(account_id.to_string()).or_default();
        if n <= *shown {
            return false;
        }
        *shown = n;
        true
    }

    /// Fetches still in flight predate a change made here: drop their answers.
    fn outdate_fetches(&mut self, account_id: &str) {
        let started = self
            .fetches_started
            .get(account_id)
            .copied()
            .unwrap_or_default();
        self.fetch_shown.insert(account_id.to_string(), started);
    }

    /// Drops the account's requests (its device was revoked).
    pub(super) fn clear_requests(&mut self, account_id: &str) {
        self.requests.retain(|(a, _), _| a != account_id);
        self.outdate_fetches(account_id);
    }

    /// Drops everything about an account that was removed.
    pub(super) fn forget_account(&mut self, account_id: &str) {
        self.requests.retain(|(a, _), _| a != account_id);
        self.hidden.remove(account_id);
        self.announced.retain(|(a, _)| a != account_id);
        self.fetches_started.remove(account_id);
        self.fetch_shown.remove(account_id);
        self.resolved.retain(|r| r.account_id != account_id);
    }
}

impl Authenticator {
    /// The pending requests of every account, oldest first, expired ones left out.
    pub async fn inbox(&self) -> InboxView {
        self.ensure_loaded().await;
        let now = now_secs();
        let inbox = lock(&self.0.inbox);
        let mut requests: Vec<RequestView> = inbox
            .requests
            .values()
            .filter(|p| p.view.expires_at > now)
            .map(|p| p.view.clone())
            .collect();
        requests.sort_by(|a, b| (a.created_at, &a.request_id).cmp(&(b.created_at, &b.request_id)));
        InboxView {
            requests,
            hidden_bad_signatures: inbox.hidden.values().sum(),
            resolved: inbox.resolved.iter().cloned().collect(),
        }
    }

    /// Fetches every account's pending requests now.
    pub async fn refresh_all(&self) -> InboxView {
        self.ensure_loaded().await;
        let ids = self.usable_account_ids();
        futures_util::future::join_all(ids.iter().map(|id| self.refresh(id))).await;
        self.inbox().await
    }

    /// Fetches one account's pending requests and replaces its part of the
    /// inbox. Challenges whose server signature fails are counted and dropped
    /// here: they never reach the inbox, so never the screen.
    pub async fn refresh(&self, account_id: &str) -> Result<(), AppError> {
        let Some((client, label)) = self.client(account_id) else {
            return Err(AppError::unknown_account());
        };
        let fetch = lock(&self.0.inbox).start_fetch(account_id);
        let pending = match client.pending().await {
            Ok(pending) => pending,
            Err(e) => {
                let e = AppError::from_device(e, &client.account.server);
                self.set_problem(account_id, Some(&e));
                return Err(e);
            }
        };
        self.set_problem(account_id, None);
        if let Some(new_key) = pending.new_server_key.clone() {
            if let Err(e) = self.adopt_server_key(account_id, new_key).await {
                log::warn!("account {account_id}: keeping the new server key failed: {e:?}");
            }
        }
        self.set_muted(account_id, pending.muted_until);
        for why in &pending.rejected {
            log::warn!("hid a request for account {account_id}: {why}");
        }
        let now = now_secs();
        let mut announce = Vec::new();
        let mut logos_wanted = Vec::new();
        {
            let mut inbox = lock(&self.0.inbox);
            if !inbox.accept_fetch(account_id, fetch) {
                return Ok(());
            }
            inbox.requests.retain(|(a, _), _| a != account_id);
            inbox
                .hidden
                .insert(account_id.to_string(), pending.rejected.len());
            let mut current = HashSet::new();
            for challenge in pending.verified {
                if challenge.claims.exp <= now {
                    continue;
                }
                let key = (account_id.to_string(), challenge.claims.request_id.clone());
                let view = RequestView::new(account_id, &label, &challenge.claims, &self.0.locale);
                if let Some(logo) = &view.logo_uri {
                    logos_wanted.push(logo.clone());
                }
                if !inbox.announced.contains(&key) {
                    let (title, body) = view.notification();
                    announce.push(UiEvent::NewRequest {
                        account_id: account_id.to_string(),
                        request_id: view.request_id.clone(),
                        title,
                        body,
                    });
                }
                current.insert(key.clone());
                inbox
                    .requests
                    .insert(key, PendingRequest { challenge, view });
            }
            // Forget announcements of requests that are gone, keeping the set small.
            inbox
                .announced
                .retain(|k| k.0 != account_id || current.contains(k));
            inbox.announced.extend(current);
        }
        self.emit(UiEvent::InboxChanged);
        for event in announce {
            self.emit(event);
        }
        self.fetch_logos(&client.account.server, logos_wanted).await;
        Ok(())
    }

    /// One request, as verified when it was fetched.
    pub async fn request(
        &self,
        account_id: &str,
        request_id: &str,
    ) -> Result<RequestView, AppError> {
        self.ensure_loaded().await;
        let inbox = lock(&self.0.inbox);
        let pending = inbox
            .requests
            .get(&(account_id.to_string(), request_id.to_string()))
            .ok_or_else(AppError::gone)?;
        if pending.view.expires_at <= now_secs() {
            return Err(AppError::expired());
        }
        let mut view = pending.view.clone();
        drop(inbox);
        view.logo = self.logo(view.logo_uri.as_deref());
        Ok(view)
    }

    /// Signs and sends the person's decision. Approving needs the app PIN
    /// (checked here, throttled) and, when the request asks for one, the
    /// code the requesting application shows; denying needs neither.
    pub async fn decide(
        &self,
        account_id: &str,
        request_id: &str,
        decision: Decision,
        match_code: Option<&str>,
        pin: Option<&str>,
    ) -> Result<DecisionView, AppError> {
        self.ensure_loaded().await;
        let key = (account_id.to_string(), request_id.to_string());
        let (challenge, view) = {
            let inbox = lock(&self.0.inbox);
            let pending = inbox.requests.get(&key).ok_or_else(AppError::gone)?;
            (pending.challenge.clone(), pending.view.clone())
        };
        if view.expires_at <= now_secs() {
            self.forget_request(&key);
            return Err(AppError::expired());
        }
        let (client, _) = self
            .client(account_id)
            .ok_or_else(AppError::unknown_account)?;
        let answer = match decision.to_wire() {
            (Verdict::Approve, _) => {
                let code = match view.match_code_digits {
                    Some(digits) => Some(check_match_code(match_code, digits, &view.client_name)?),
                    None => None,
                };
                let pin = pin
                    .filter(|p| !p.is_empty())
                    .ok_or_else(AppError::pin_needed)?;
                self.verify_pin(pin).await?;
                Answer::approve(code.as_deref()).verified_by(&[UserVerification::Pin])
            }
            (Verdict::Deny, reason) => Answer::deny(reason),
        };
        match client.decide(&challenge, &answer).await {
            Ok(response) => {
                self.forget_request(&key);
                let entry = HistoryEntry {
                    account_id: account_id.to_string(),
                    request_id: request_id.to_string(),
                    decided_at: now_secs(),
                    client_name: view.client_name,
                    binding_message: view.binding_message,
                    choice: Some(decision),
                    enrolled_device: None,
                };
                if let Some(dir) = self.account_dir(account_id) {
                    let recorded =
                        tokio::task::spawn_blocking(move || history::record(&dir, entry)).await;
                    if let Ok(Err(e)) | Err(e) = recorded.map_err(anyhow::Error::from) {
                        log::error!("could not record the decision in the history: {e:#}");
                    }
                }
                if decision != Decision::Approve {
                    // A denial may have paused new requests (after "This
                    // wasn't me", or several denials): the pending list says.
                    let _ = self.refresh(account_id).await;
                }
                Ok(DecisionView {
                    request_id: response.request_id,
                    status: response.status,
                })
            }
            Err(e) if e.code() == Some(DeviceErrorCode::WrongMatchCode) => {
                // The server counts wrong codes and denies at the third: ask
                // it whether this request is still open.
                let _ = self.refresh(account_id).await;
                let still_open = lock(&self.0.inbox).requests.contains_key(&key);
                if still_open {
                    Err(AppError::wrong_match_code(&view.client_name))
                } else {
                    self.forget_request(&key);
                    Err(AppError::denied_after_wrong_codes())
                }
            }
            Err(e) => {
                let e = AppError::from_device(e, &client.account.server);
                if matches!(
                    e.kind,
                    ErrorKind::AlreadyAnswered | ErrorKind::Expired | ErrorKind::Gone
                ) {
                    self.forget_request(&key);
                }
                Err(e)
            }
        }
    }

    /// Denies every pending request (of every account): the way out of a
    /// burst of requests the person did not start. `choice` is
    /// [`Decision::Deny`] or [`Decision::NotMe`].
    pub async fn deny_all(&self, choice: Decision) -> Result<DenyAllView, AppError> {
        if matches!(choice, Decision::Approve) {
            return Err(AppError::new(
                ErrorKind::Internal,
                "Only denials go to every request at once.",
            ));
        }
        let keys: Vec<RequestKey> = lock(&self.0.inbox).requests.keys().cloned().collect();
        let mut denied = 0;
        let mut failed = Vec::new();
        for (account_id, request_id) in keys {
            match self
                .decide(&account_id, &request_id, choice, None, None)
                .await
            {
                Ok(_) => denied += 1,
                // Answered elsewhere in the meantime: nothing left to deny.
                Err(e)
                    if matches!(
                        e.kind,
                        ErrorKind::AlreadyAnswered | ErrorKind::Expired | ErrorKind::Gone
                    ) => {}
                Err(e) => failed.push(e.message),
            }
        }
        Ok(DenyAllView { denied, failed })
    }

    /// Past decisions, newest first: of one account, or of all.
    pub async fn history(&self, account_id: Option<&str>) -> Result<Vec<HistoryEntry>, AppError> {
        self.ensure_loaded().await;
        let dirs: Vec<PathBuf> = self.account_dirs(account_id)?;
        tokio::task::spawn_blocking(move || {
            let mut all = Vec::new();
            for dir in dirs {
                all.extend(history::load(&dir)?);
            }
            all.sort_by_key(|e: &HistoryEntry| std::cmp::Reverse(e.decided_at));
            Ok(all)
        })
        .await
        .map_err(AppError::internal)?
        .map_err(|e: anyhow::Error| AppError::internal(format!("{e:#}")))
    }

    /// A request was answered on another device (the event stream says so):
    /// it leaves the inbox, and the screen can tell what became of it.
    pub(super) fn resolved_elsewhere(&self, key: RequestKey, outcome: Option<String>) {
        {
            let mut inbox = lock(&self.0.inbox);
            if inbox.resolved.len() == RESOLVED_KEPT {
                inbox.resolved.pop_front();
            }
            inbox.resolved.push_back(ResolvedView {
                account_id: key.0.clone(),
                request_id: key.1.clone(),
                outcome,
            });
        }
        self.forget_request(&key);
    }

    /// Drops a request that is no longer pending (decided here or elsewhere).
    pub(super) fn forget_request(&self, key: &RequestKey) {
        let removed = {
            let mut inbox = lock(&self.0.inbox);
            inbox.outdate_fetches(&key.0);
            inbox.requests.remove(key).is_some()
        };
        if removed {
            self.emit(UiEvent::InboxChanged);
        }
    }
}

/// The typed number-matching code, or why it cannot be sent yet.
fn check_match_code(
    typed: Option<&str>,
    digits: u8,
    client_name: &str,
) -> Result<String, AppError> {
    let typed = typed.unwrap_or_default().trim();
    if typed.len() == usize::from(digits) && typed.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(typed.to_string());
    }
    Err(AppError::new(
        ErrorKind::MatchCodeNeeded,
        format!("Type the {digits}-digit number {client_name} shows you, then approve."),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_match_code_must_have_the_asked_number_of_digits() {
        assert_eq!(check_match_code(Some("47"), 2, "Bank").unwrap(), "47");
        assert_eq!(check_match_code(Some(" 0815 "), 4, "Bank").unwrap(), "0815");
        for typed in [
            None,
            Some(""),
            Some("4"),
            Some("471"),
            Some("4a"),
            Some("٤٧"),
        ] {
            let e = check_match_code(typed, 2, "Bank").unwrap_err();
            assert_eq!(e.kind, ErrorKind::MatchCodeNeeded, "{typed:?}");
            assert_eq!(
                e.message,
                "Type the 2-digit number Bank shows you, then approve."
            );
        }
    }

    #[test]
    fn an_older_fetch_never_replaces_a_newer_one() {
        let mut inbox = Inbox::default();
        let first = inbox.start_fetch("a");
        let second = inbox.start_fetch("a");
        assert!(inbox.accept_fetch("a", second));
        assert!(
            !inbox.accept_fetch("a", first),
            "the slower, older answer is dropped"
        );
        // Another account counts on its own.
        let other = inbox.start_fetch("b");
        assert!(inbox.accept_fetch("b", other));
        // A local change (a request answered here) outdates fetches in flight.
        let in_flight = inbox.start_fetch("a");
        inbox.outdate_fetches("a");
        assert!(!inbox.accept_fetch("a", in_flight));
        let next = inbox.start_fetch("a");
        assert!(inbox.accept_fetch("a", next));
    }
}
