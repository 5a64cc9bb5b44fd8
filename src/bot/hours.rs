//! Business hours: a weekly schedule in the business's time zone with several intervals
//! a day, intervals that cross midnight (`22:00-02:00`), holidays and special dates.
//! Each interval belongs to the day it starts on; the open ranges of the days around
//! now are laid out as instants and merged, so "is it open" and "since when is it
//! closed" (the away message's once-per-closed-period key) are read off one list.

use super::document::Hours;
use chrono::{Datelike, Duration, NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;

/// `mon`..`sun` (also the English and Indonesian day names).
pub fn weekday(day: &str) -> Option<chrono::Weekday> {
    use chrono::Weekday::{Fri, Mon, Sat, Sun, Thu, Tue, Wed};
    Some(match day.trim().to_lowercase().as_str() {
        "mon" | "monday" | "senin" => Mon,
        "tue" | "tuesday" | "selasa" => Tue,
        "wed" | "wednesday" | "rabu" => Wed,
        "thu" | "thursday" | "kamis" => Thu,
        "fri" | "friday" | "jumat" | "jum'at" => Fri,
        "sat" | "saturday" | "sabtu" => Sat,
        "sun" | "sunday" | "minggu" => Sun,
        _ => return None,
    })
}

/// `HH:MM-HH:MM`: (start, minutes long). An end at or before the start is the next day;
/// `24:00` is midnight.
pub fn parse_interval(interval: &str) -> Option<(NaiveTime, i64)> {
    let (start, end) = interval.split_once('-')?;
    let minutes = |clock: &str| -> Option<i64> {
        let (hours, mins) = clock.trim().split_once(':')?;
        let (hours, mins): (i64, i64) = (hours.parse().ok()?, mins.parse().ok()?);
        let total = hours * 60 + mins;
        ((0..=24).contains(&hours) && (0..60).contains(&mins) && total <= 1440).then_some(total)
    };
    let (from, to) = (minutes(start)?, minutes(end)?);
    if from == 1440 {
        return None;
    }
    let long = if to > from { to - from } else { to + 1440 - from };
    let start = NaiveTime::from_hms_opt(u32::try_from(from / 60).ok()?, u32::try_from(from % 60).ok()?, 0)?;
    Some((start, long))
}

/// The zone the hours are in: their own, else the business's.
pub fn zone(h: &Hours, business: Tz) -> Tz {
    h.timezone.as_deref().and_then(|t| t.parse().ok()).unwrap_or(business)
}

/// Open ranges `[start, end)` in unix seconds for the days from 8 before `now` to 1
/// after, merged.
fn ranges(h: &Hours, tz: Tz, now: i64) -> Vec<(i64, i64)> {
    let Some(today) = tz.timestamp_opt(now, 0).single().map(|t| t.date_naive()) else {
        return Vec::new();
    };
    let mut out: Vec<(i64, i64)> = Vec::new();
    for back in -1..=8 {
        let day = today - Duration::days(back);
        for (start, long) in intervals_of(h, day) {
            let Some(at) = tz.from_local_datetime(&day.and_time(start)).earliest() else {
                continue;
            };
            let s = at.timestamp();
            out.push((s, s + long * 60));
        }
    }
    out.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(out.len());
    for (s, e) in out {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

fn intervals_of(h: &Hours, day: NaiveDate) -> Vec<(NaiveTime, i64)> {
    let key = day.format("%Y-%m-%d").to_string();
    if let Some(special) = h.special.get(&key) {
        return special.iter().filter_map(|i| parse_interval(i)).collect();
    }
    if h.holidays.contains(&key) {
        return Vec::new();
    }
    h.weekly
        .iter()
        .filter(|(d, _)| weekday(d) == Some(day.weekday()))
        .flat_map(|(_, list)| list.iter().filter_map(|i| parse_interval(i)))
        .collect()
}

/// Whether the business is open at `now`.
pub fn is_open(h: &Hours, tz: Tz, now: i64) -> bool {
    ranges(h, tz, now).iter().any(|&(s, e)| s <= now && now < e)
}

/// When the closed period `now` is in began (the end of the last opening), or `None`
/// when open. A closed period longer than the days looked at begins at their start.
pub fn closed_since(h: &Hours, tz: Tz, now: i64) -> Option<i64> {
    let r = ranges(h, tz, now);
    if r.iter().any(|&(s, e)| s <= now && now < e) {
        return None;
    }
    Some(
        r.iter()
            .map(|&(_, e)| e)
            .filter(|&e| e <= now)
            .max()
            .unwrap_or(now - (now.rem_euclid(86_400)) - 8 * 86_400),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(weekly: &[(&str, &[&str])]) -> Hours {
        Hours {
            timezone: None,
            weekly: weekly
                .iter()
                .map(|(d, l)| ((*d).to_string(), l.iter().map(|s| (*s).to_string()).collect()))
                .collect(),
            holidays: Vec::new(),
            special: std::collections::BTreeMap::new(),
            away_text: String::new(),
            quiet_after_agent_minutes: 5,
            bot_while_closed: true,
        }
    }

    /// Unix time of a Jakarta wall clock.
    fn wib(date: &str, time: &str) -> i64 {
        let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").expect("date");
        let t = NaiveTime::parse_from_str(time, "%H:%M").expect("time");
        chrono_tz::Asia::Jakarta
            .from_local_datetime(&d.and_time(t))
            .single()
            .expect("local")
            .timestamp()
    }

    #[test]
    fn intervals_parse_and_cross_midnight() {
        let (start, long) = parse_interval("22:00-02:00").expect("overnight");
        assert_eq!((start.to_string().as_str(), long), ("22:00:00", 240));
        assert_eq!(parse_interval("09:00-24:00").map(|x| x.1), Some(900));
        assert_eq!(parse_interval("00:00-00:00").map(|x| x.1), Some(1440), "all day");
        for bad in ["9-5", "25:00-26:00", "09:60-10:00", "24:00-01:00", "", "09:00"] {
            assert_eq!(parse_interval(bad), None, "{bad}");
        }
    }

    #[test]
    fn split_shifts_overnight_and_holidays() {
        let tz = chrono_tz::Asia::Jakarta;
        // 2026-12-04 is a Friday.
        let mut h = hours(&[("fri", &["09:00-12:00", "13:00-17:00", "22:00-02:00"])]);
        assert!(is_open(&h, tz, wib("2026-12-04", "10:00")));
        assert!(!is_open(&h, tz, wib("2026-12-04", "12:30")), "lunch break");
        assert_eq!(
            closed_since(&h, tz, wib("2026-12-04", "12:30")),
            Some(wib("2026-12-04", "12:00"))
        );
        assert!(
            is_open(&h, tz, wib("2026-12-05", "01:30")),
            "Friday night into Saturday"
        );
        assert!(!is_open(&h, tz, wib("2026-12-05", "02:00")));
        assert_eq!(
            closed_since(&h, tz, wib("2026-12-05", "09:00")),
            Some(wib("2026-12-05", "02:00"))
        );
        h.holidays.push("2026-12-04".into());
        assert!(
            !is_open(&h, tz, wib("2026-12-04", "10:00")),
            "a holiday is closed all day"
        );
        h.special.insert("2026-12-04".into(), vec!["08:00-09:00".into()]);
        assert!(is_open(&h, tz, wib("2026-12-04", "08:30")), "a special date wins");
        assert!(!is_open(&h, tz, wib("2026-12-04", "10:00")));
    }

    #[test]
    fn the_zone_is_the_hours_own() {
        let mut h = hours(&[("fri", &["09:00-17:00"])]);
        h.timezone = Some("Asia/Jayapura".into());
        let tz = zone(&h, chrono_tz::Asia::Jakarta);
        // 09:30 in Jakarta is 11:30 in Jayapura; 16:30 in Jakarta is 18:30 there.
        assert!(is_open(&h, tz, wib("2026-12-04", "09:30")));
        assert!(!is_open(&h, tz, wib("2026-12-04", "16:30")));
    }
}
