//! "Finishes at": the send rate, the sending hours and the portfolio's rolling 24-hour
//! messaging limit, put together honestly (CAMPAIGNS-BOT.md E.2). Pure arithmetic, so
//! the pre-flight, the API and the campaign page say the same.

use chrono::{TimeZone, Timelike};
use serde::Serialize;

/// The share of a number's messages per second kept for the inbox and the bot while a
/// campaign sends (a tenth, at least one message a second).
pub fn campaign_rate(mps: i64) -> i64 {
    let mps = mps.clamp(1, 1000);
    (mps - (mps / 10).max(1)).max(1)
}

/// What the estimate starts from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs {
    /// When sending starts (now, or the scheduled time).
    pub start: i64,
    /// People still to message.
    pub people: i64,
    /// Campaign messages per second.
    pub rate: i64,
    pub tz: chrono_tz::Tz,
    /// Sending hours, minutes after local midnight (`to < from` crosses midnight).
    pub hours: Option<(i64, i64)>,
    /// The portfolio's daily limit (`None`: unknown or unlimited).
    pub limit: Option<i64>,
    /// What the last 24 hours used of it.
    pub used: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Estimate {
    pub people: i64,
    pub rate_per_second: i64,
    /// When the last message should be accepted by Meta (`None`: nothing to send).
    pub finishes_at: Option<i64>,
    /// 24-hour windows the daily limit splits the audience into (1: it fits).
    pub windows: i64,
    pub daily_limit: Option<i64>,
    pub used_last_24h: i64,
    /// What is left of the limit now.
    pub left_now: Option<i64>,
}

/// Whether `t` is inside the sending hours, and if not, when they next open.
fn next_open(t: i64, tz: chrono_tz::Tz, hours: Option<(i64, i64)>) -> i64 {
    let Some((from, to)) = hours else { return t };
    let Some(local) = tz.timestamp_opt(t, 0).single() else {
        return t;
    };
    let minute = i64::from(local.hour()) * 60 + i64::from(local.minute());
    let open = if from <= to {
        (from..to).contains(&minute)
    } else {
        minute >= from || minute < to
    };
    if open {
        return t;
    }
    // Minutes until `from` (today or tomorrow), to the start of that minute.
    let wait = (from - minute).rem_euclid(1440);
    t - i64::from(local.second()) + wait * 60
}

/// When the sending hours that are open at `t` close (`t` must be inside them).
fn closes_at(t: i64, tz: chrono_tz::Tz, hours: Option<(i64, i64)>) -> i64 {
    let Some((_, to)) = hours else { return i64::MAX };
    let Some(local) = tz.timestamp_opt(t, 0).single() else {
        return i64::MAX;
    };
    let minute = i64::from(local.hour()) * 60 + i64::from(local.minute());
    let wait = (to - minute).rem_euclid(1440);
    let wait = if wait == 0 { 1440 } else { wait };
    t - i64::from(local.second()) + wait * 60
}

/// Is `t` inside the sending hours?
pub fn is_open(t: i64, tz: chrono_tz::Tz, hours: Option<(i64, i64)>) -> bool {
    next_open(t, tz, hours) == t
}

/// Seconds of sending, laid over the sending hours from `t`: when they are done.
fn advance(mut t: i64, mut seconds: i64, tz: chrono_tz::Tz, hours: Option<(i64, i64)>) -> i64 {
    if hours.is_none() {
        return t.saturating_add(seconds);
    }
    // At most a few years of days: the loop ends even on a bad input.
    for _ in 0..2000 {
        t = next_open(t, tz, hours);
        let close = closes_at(t, tz, hours);
        if t.saturating_add(seconds) <= close {
            return t + seconds;
        }
        seconds -= close - t;
        t = close;
    }
    t
}

pub fn estimate(i: &Inputs) -> Estimate {
    let rate = i.rate.max(1);
    let limit = i.limit.filter(|l| *l > 0);
    let left_now = limit.map(|l| (l - i.used).max(0));
    let mut out = Estimate {
        people: i.people,
        rate_per_second: rate,
        finishes_at: None,
        windows: 0,
        daily_limit: limit,
        used_last_24h: i.used,
        left_now,
    };
    if i.people <= 0 {
        return out;
    }
    let (mut t, mut left, mut budget) = (i.start, i.people, left_now.unwrap_or(i64::MAX));
    let mut window_start = i.start;
    for _ in 0..10_000 {
        let batch = left.min(budget);
        if batch > 0 {
            out.windows += 1;
            t = advance(t, (batch + rate - 1) / rate, i.tz, i.hours);
            left -= batch;
        }
        if left == 0 {
            break;
        }
        // The limit is a rolling day: the next window opens a day after this one began.
        let Some(l) = limit else { break };
        t = t.max(window_start + 86_400);
        window_start = t;
        budget = l;
    }
    out.finishes_at = Some(t);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAKARTA: chrono_tz::Tz = chrono_tz::Asia::Jakarta;
    /// 2026-12-01 08:00 in Jakarta (01:00 UTC).
    const MORNING: i64 = 1_796_086_800;

    fn inputs(people: i64, rate: i64) -> Inputs {
        Inputs {
            start: MORNING,
            people,
            rate,
            tz: JAKARTA,
            hours: None,
            limit: None,
            used: 0,
        }
    }

    #[test]
    fn the_reserve_is_a_tenth_of_the_rate() {
        assert_eq!(campaign_rate(80), 72);
        assert_eq!(campaign_rate(1000), 900);
        assert_eq!(campaign_rate(1), 1);
        assert_eq!(campaign_rate(5), 4);
    }

    #[test]
    fn without_limits_it_is_people_over_rate() {
        let e = estimate(&inputs(7200, 72));
        assert_eq!(e.finishes_at, Some(MORNING + 100));
        assert_eq!(e.windows, 1);
        assert_eq!(estimate(&inputs(0, 72)).finishes_at, None);
    }

    #[test]
    fn sending_hours_hold_the_start_and_stretch_over_nights() {
        let mut i = inputs(72 * 3600, 72);
        i.hours = Some((9 * 60, 20 * 60));
        let e = estimate(&i);
        // Opens at 09:00, one hour of sending.
        assert_eq!(e.finishes_at, Some(MORNING + 3600 + 3600));
        i.people = 72 * 3600 * 12;
        // 11 hours on the first day, the twelfth hour the next morning at 09:00-10:00.
        assert_eq!(estimate(&i).finishes_at, Some(MORNING + 3600 + 86_400 + 3600));
        assert!(is_open(MORNING + 3600, JAKARTA, i.hours));
        assert!(!is_open(MORNING, JAKARTA, i.hours));
        let overnight = Some((22 * 60, 6 * 60));
        assert!(!is_open(MORNING, JAKARTA, overnight), "08:00 is after 06:00");
        assert!(is_open(MORNING - 3 * 3600, JAKARTA, overnight), "05:00 is before 06:00");
    }

    #[test]
    fn a_daily_limit_below_the_audience_splits_it_into_days() {
        let mut i = inputs(2_500, 72);
        i.limit = Some(1_000);
        i.used = 400;
        let e = estimate(&i);
        assert_eq!(e.left_now, Some(600));
        // 600 now, 1000 a day later, 900 two days later.
        assert_eq!(e.windows, 3);
        assert_eq!(e.finishes_at, Some(MORNING + 2 * 86_400 + 13));
        i.limit = Some(-1);
        assert_eq!(estimate(&i).windows, 1, "unlimited");
    }
}
