//! The dashboard (`GET /console/`): counts now, the last 24 hours per hour
//! as bar charts (server-drawn SVG, with the same numbers as a table for
//! screen readers and anyone who prefers one), push health, and the latest
//! requests with "this wasn't me" highlighted.

use askama::Template;
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};

use super::{At, RequestLine};
use crate::{
    console::Area,
    error::OAuthError,
    http::{
        console::{error_page, page, ConsoleUser, Frame},
        AppState,
    },
    operations::{Operator, RequestFilter},
    storage::{HourlyCount, HourlyDecisions, HOUR_MS},
};

/// Hours the charts cover, the current one last.
const HOURS: usize = 24;

// The charts' drawing, in SVG user units (the SVG scales to its box).
const WIDTH: i64 = 540;
const HEIGHT: i64 = 150;
const PLOT_LEFT: i64 = 36;
const PLOT_TOP: i64 = 10;
const PLOT_HEIGHT: i64 = 110;
const SLOT: i64 = 20;
const BAR: i64 = 14;

/// One hour's bar.
pub struct Bar {
    pub x: i64,
    pub y: i64,
    pub height: i64,
    /// What a pointer over it shows.
    pub label: String,
}

/// An hour named under the axis.
pub struct Tick {
    pub x: i64,
    pub text: String,
}

/// One series over the last 24 hours.
pub struct Chart {
    /// `approvals`, `denials`, `not-me`, `push-failures`: its id and colour.
    pub key: &'static str,
    pub title: &'static str,
    pub total: i64,
    pub max: i64,
    pub bars: Vec<Bar>,
    pub ticks: Vec<Tick>,
    /// The chart in one sentence (its accessible description).
    pub summary: String,
}

/// The numbers of one hour, for the table.
pub struct HourRow {
    pub hour: String,
    pub approvals: i64,
    pub denials: i64,
    pub not_me: i64,
    pub push_failures: i64,
}

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct Dashboard {
    frame: Frame,
    pending: i64,
    clients: usize,
    users: usize,
    devices: usize,
    push_disabled: i64,
    failed_last_hour: i64,
    charts: Vec<Chart>,
    hours: Vec<HourRow>,
    requests: Vec<RequestLine>,
    /// Whether the requests are filtered (the dashboard's are not).
    filtered: bool,
    width: i64,
    height: i64,
    baseline: i64,
    plot_left: i64,
    plot_right: i64,
    plot_top: i64,
}

/// `HH:00` of an hour bucket.
fn hour_text(bucket: i64) -> String {
    let text = At::of(bucket * HOUR_MS).text;
    // "YYYY-MM-DD HH:MM:SS UTC"
    text.get(11..13)
        .map_or(text.clone(), |hh| format!("{hh}:00"))
}

/// A chart of `values` (one per hour from `first_hour`).
fn chart(
    key: &'static str,
    title: &'static str,
    noun: &str,
    first_hour: i64,
    values: &[i64],
) -> Chart {
    let total: i64 = values.iter().sum();
    let max = values.iter().copied().max().unwrap_or(0);
    let scale = max.max(1);
    let bars = values
        .iter()
        .enumerate()
        .filter(|(_, &v)| v > 0)
        .map(|(i, &v)| {
            let height = (v * PLOT_HEIGHT / scale).max(2);
            Bar {
                x: PLOT_LEFT + i as i64 * SLOT + (SLOT - BAR) / 2,
                y: PLOT_TOP + PLOT_HEIGHT - height,
                height,
                label: format!("{}: {v} {noun}", hour_text(first_hour + i as i64)),
            }
        })
        .collect();
    let ticks = (0..HOURS)
        .step_by(6)
        .chain([HOURS - 1])
        .map(|i| Tick {
            x: PLOT_LEFT + i as i64 * SLOT + SLOT / 2,
            text: hour_text(first_hour + i as i64),
        })
        .collect();
    let summary = if total == 0 {
        format!("{title} per hour over the last 24 hours: none.")
    } else {
        let busiest = values.iter().position(|&v| v == max).unwrap_or(0);
        format!(
            "{title} per hour over the last 24 hours: {total} in all, most in the hour from {} UTC ({max}).",
            hour_text(first_hour + busiest as i64)
        )
    };
    Chart {
        key,
        title,
        total,
        max,
        bars,
        ticks,
        summary,
    }
}

/// The counts of `rows` in the hours from `first_hour`, zero where none.
fn per_hour<T>(rows: &[T], first_hour: i64, of: impl Fn(&T) -> (i64, i64)) -> Vec<i64> {
    let mut values = vec![0; HOURS];
    for row in rows {
        let (hour, count) = of(row);
        if let Some(slot) = usize::try_from(hour - first_hour)
            .ok()
            .and_then(|i| values.get_mut(i))
        {
            *slot += count;
        }
    }
    values
}

/// `GET /console/`.
pub async fn show(State(state): State<AppState>, user: ConsoleUser) -> Response {
    let session = match user.allowed(Area::Operate) {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let assent = &state.assent;
    let op = Operator::serving(assent, session.actor(), String::new());
    let now = assent.clock.now_ms();
    let first_hour = now / HOUR_MS - (HOURS as i64 - 1);
    let since = first_hour * HOUR_MS;
    let loaded = async {
        let store = &assent.store;
        let pending = store.count_pending_requests(now).await?;
        let decisions: Vec<HourlyDecisions> = store.decisions_per_hour(since).await?;
        let failures: Vec<HourlyCount> = store.failed_pushes_per_hour(since).await?;
        let health = store.push_health(now - HOUR_MS).await?;
        let clients = op.clients().await?.len();
        let users = op.users().await?.len();
        let devices = op
            .devices(None)
            .await?
            .iter()
            .filter(|d| d.revoked_at.is_none())
            .count();
        let requests = op
            .requests(&RequestFilter {
                user: None,
                not_me: false,
                limit: 50,
            })
            .await?;
        Ok::<_, OAuthError>((
            pending, decisions, failures, health, clients, users, devices, requests,
        ))
    };
    let (pending, decisions, failures, health, clients, users, devices, requests) =
        match loaded.await {
            Ok(loaded) => loaded,
            Err(e) => return error_page(e, Some(&session)),
        };
    let approvals = per_hour(&decisions, first_hour, |d| (d.hour, d.approvals));
    let denials = per_hour(&decisions, first_hour, |d| (d.hour, d.denials));
    let not_me = per_hour(&decisions, first_hour, |d| (d.hour, d.not_me));
    let push_failures = per_hour(&failures, first_hour, |f| (f.hour, f.count));
    let hours = (0..HOURS)
        .map(|i| HourRow {
            hour: hour_text(first_hour + i as i64),
            approvals: approvals[i],
            denials: denials[i],
            not_me: not_me[i],
            push_failures: push_failures[i],
        })
        .collect();
    let charts = vec![
        chart("approvals", "Approvals", "approved", first_hour, &approvals),
        chart("denials", "Denials", "denied", first_hour, &denials),
        chart(
            "not-me",
            "\u{201c}This wasn't me\u{201d} reports",
            "reported",
            first_hour,
            &not_me,
        ),
        chart(
            "push-failures",
            "Push failures",
            "failed",
            first_hour,
            &push_failures,
        ),
    ];
    page(
        StatusCode::OK,
        &Dashboard {
            frame: Frame::at(&session, "dashboard"),
            pending,
            clients,
            users,
            devices,
            push_disabled: health.push_disabled_devices,
            failed_last_hour: health.failed_pushes,
            charts,
            hours,
            requests: requests.iter().map(RequestLine::of).collect(),
            filtered: false,
            width: WIDTH,
            height: HEIGHT,
            baseline: PLOT_TOP + PLOT_HEIGHT,
            plot_left: PLOT_LEFT,
            plot_right: PLOT_LEFT + HOURS as i64 * SLOT,
            plot_top: PLOT_TOP,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_draws_each_hour_in_its_slot() {
        let mut values = vec![0; HOURS];
        values[0] = 1;
        values[23] = 4;
        let c = chart("approvals", "Approvals", "approved", 10, &values);
        assert_eq!(c.total, 5);
        assert_eq!(c.max, 4);
        assert_eq!(c.bars.len(), 2, "empty hours draw no bar");
        assert_eq!(c.bars[1].height, PLOT_HEIGHT, "the largest fills the plot");
        assert_eq!(c.bars[1].y, PLOT_TOP);
        assert_eq!(c.bars[0].height, PLOT_HEIGHT / 4);
        assert_eq!(c.bars[0].x, PLOT_LEFT + 3);
        assert!(c.bars[1].x + BAR <= PLOT_LEFT + HOURS as i64 * SLOT);
        assert_eq!(c.bars[0].label, "10:00: 1 approved");
        assert!(c.summary.contains("5 in all"), "{}", c.summary);
        assert!(c.summary.contains("from 09:00 UTC (4)"), "{}", c.summary);
    }

    #[test]
    fn hours_outside_the_window_are_left_out() {
        let rows = [(9, 5), (10, 1), (33, 2), (34, 7)];
        let values = per_hour(&rows, 10, |&(h, c)| (h, c));
        assert_eq!(values.len(), HOURS);
        assert_eq!(values[0], 1);
        assert_eq!(values[23], 2);
        assert_eq!(values.iter().sum::<i64>(), 3);
    }

    #[test]
    fn an_empty_chart_says_so() {
        let c = chart("denials", "Denials", "denied", 0, &[0; HOURS]);
        assert!(c.bars.is_empty());
        assert!(c.summary.ends_with("none."), "{}", c.summary);
    }
}
